"""Reads for the review pages and the partner API, one module per page: the queue, a record
(its page, its audit trail and pack), the dashboard, the what-if replay and the settings.

Every list joins what it shows (select_related / prefetch_related): the query count of a page
does not grow with its rows.
"""
