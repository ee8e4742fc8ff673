"""The worker topology: a Celery app (Redis broker), its two queues and thin tasks."""
