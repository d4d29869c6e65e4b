"""Read models rebuilt from the log alone: catalogues, disclosure lists, inspection trails."""
