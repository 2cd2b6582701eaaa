"""Real parts shared by the test suite and the benchmarks.

Both ``tests`` and ``bench`` import from here, and neither imports the other:

- :mod:`testkit.paths`: the repository root and the real audio fixtures;
- :mod:`testkit.servers`: moto's threaded S3 server, fresh PostgreSQL databases, the app on
  werkzeug or under the real gunicorn, on free loopback ports;
- :mod:`testkit.live`: a ``requests`` client of a served app, the fixtures' manifest, a PUT with
  the signed headers;
- :mod:`testkit.loopback`: the whole service on loopback in one call (moto, database, app);
- :mod:`testkit.sigv4`: an independent SigV4 signature check of presigned URLs;
- :mod:`testkit.faultproxy`: a TCP proxy that drops or delays connections on demand;
- :mod:`testkit.longaudio`, :mod:`testkit.crafted_audio`: long and hostile audio built from
  the real fixtures;
- :mod:`testkit.fuzzing`: the schemathesis runner.
"""
