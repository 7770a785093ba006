"""The pure core: SIDs, clock, resource models, validation, errors and paging cursors."""
