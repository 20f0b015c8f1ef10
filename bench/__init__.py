"""perfmon's benchmarks, run from the checkout's root with the Python that perfmon is installed in.

    python -m bench                  # the HTTP benchmark against a ceiling (bench/run.py; needs wrk)
    python -m bench.connections      # a new client's latency beside a fleet and a slowloris
    python -m bench.slow_readers     # memory held for answers nobody reads
    python -m bench.hotspots FILE    # a py-spy profile of `python -m bench --profile DIR`, summarised

bench/README.md says what each one measures and how to read its figures.
"""
