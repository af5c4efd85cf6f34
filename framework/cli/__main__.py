from framework.cli.app import entry


entry()
