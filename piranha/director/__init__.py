"""pulse's director: what a director owns (``plan``), how it takes over and stands down
(``actuator``), its lvsd child (``lvsdproc``), the announcement schedule (``announce``) and the
daemon loop that ties them to the failover machine (``loop``)."""
