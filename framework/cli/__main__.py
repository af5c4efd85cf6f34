from framework.cli.app import main


main()
