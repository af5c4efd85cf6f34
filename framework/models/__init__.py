"""Reference models. Each declares its dropout sites (:class:`~framework.models.sites.DropoutSite`,
tagged by kind) and its layer stack, so strategies act on any of them the same way."""
