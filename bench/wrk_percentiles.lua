-- wrk script: prints one machine-readable line with latency percentiles (microseconds).
done = function(summary, latency, requests)
  io.write(string.format("PCT p50=%d p95=%d p99=%d max=%d reqs=%d errors=%d secs=%.2f\n",
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout, summary.duration / 1e6))
end
