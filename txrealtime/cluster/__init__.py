"""Every core of one host: ``twistd txrealtime --workers N``.

The first process, the master (:mod:`txrealtime.cluster.master`), owns the
listening endpoints and starts ``N`` worker processes, each a full txrealtime
server. It reads the first request line of each connection
(:mod:`txrealtime.cluster.router`) and passes the socket (``SCM_RIGHTS``) to
the worker whose index starts the request's ``sid``, or to the least loaded
one for a new session (:mod:`txrealtime.cluster.routing`). Workers share
rooms and broadcasts through the classic adapter (:mod:`txrealtime.adapters.classic`,
the one Redis users have) over a link to the master (:mod:`txrealtime.cluster.link`,
relayed by :mod:`txrealtime.cluster.hub`), or through Redis itself with ``--redis``.
Master and workers speak :mod:`txrealtime.cluster.wire` frames on a Unix
socket pair (:mod:`txrealtime.cluster.worker` is the worker's end).
"""
