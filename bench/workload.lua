-- The wrk script of every perfmon benchmark run (bench/run.py writes its settings, wrk runs this).
--
-- Settings: a Lua file named by the environment variable BENCH_CONFIG, returning a table:
--   kind        "post" (one sample), "post_metrics" (one sample of the agent's 12 metrics, POST /samples),
--               "batch" (batch_size samples), "register", "login" or "get"
--   tokens      session hashes; request n of thread i goes to tokens[(i + n * threads) % #tokens + 1]
--   threads     wrk's thread count
--   base_time   the first timestamp of this run: sample times identify their thread and request,
--               so that the bench can tell which samples were acknowledged and which were stored
--   batch_size  samples per batch ("batch")
--   path        the request path and query ("get")
--   paths       or several: request n of thread i asks for paths[(i + n) % #paths + 1] ("get")
--   run         this run's number, part of user names ("register")
--   user, password   the credentials ("register" uses the password, "login" both)
--   out         the file done() writes the results to: one line of JSON, then one acknowledged
--               identifier per line (the stored sample's time, or the session hash of register/login)
--
-- Times: thread i's request n carries time base_time + i * 1e7 + n + 0.25 ("post", "post_metrics"), or sample j of
-- batch n carries base_time + i * 1e7 + n * batch_size + j + 0.25 ("batch").

local cfg = dofile(os.getenv("BENCH_CONFIG"))

local THREAD_SPAN = 1e7
local JSON_HEADERS = { ["Content-Type"] = "application/json" }

-- Setup and done run in the main Lua state: it keeps the threads to collect their counters.
local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

-- Running: one Lua state per wrk thread. Globals, so that done() can read them with thread:get().
sent = 0
acked = {}
statuses = {}

local function next_token()
  local tokens = cfg.tokens
  return tokens[(index + sent * cfg.threads) % #tokens + 1]
end

local function thread_base()
  return cfg.base_time + index * THREAD_SPAN
end

local builders = {}

function builders.post()
  local body = string.format(
    '{"hash": "%s", "cpu": %.1f, "time": %.2f}',
    next_token(), (sent % 1000) / 10, thread_base() + sent + 0.25
  )
  return wrk.format("POST", "/cpu", JSON_HEADERS, body)
end

-- The metrics of request n: bench/workload.py's agent_metrics(n), the same numbers in the same formats.
local METRICS_FORMAT = '{"hash": "%s", "time": %.2f, "metrics": {'
  .. '"cpu": %.1f, "mem": %.1f, "swap": %.1f, "load1": %.2f, "load5": %.2f, "load15": %.2f, '
  .. '"disk": %.1f, "disk_read": %d, "disk_write": %d, "net_rx": %.1f, "net_tx": %.2f, "temp": %.1f}}'

function builders.post_metrics()
  local n = sent
  local body = string.format(
    METRICS_FORMAT, next_token(), thread_base() + n + 0.25,
    (n % 1000) / 10, 20 + (n % 600) / 10, (n % 50) / 10,
    (n % 400) / 100, (n % 300) / 100, (n % 200) / 100,
    40 + (n % 200) / 10, (n % 10000) * 4096, (n % 10000) * 8192 + 512,
    1000 + n * 3.5, 800 + n * 1.25, 35 + (n % 300) / 10
  )
  return wrk.format("POST", "/samples", JSON_HEADERS, body)
end

function builders.batch()
  local size = cfg.batch_size
  local first = thread_base() + sent * size
  local parts = {}
  for j = 0, size - 1 do
    parts[j + 1] = string.format('{"cpu": %.1f, "time": %.2f}', (j % 1000) / 10, first + j + 0.25)
  end
  local body = string.format('{"hash": "%s", "samples": [%s]}', next_token(), table.concat(parts, ", "))
  return wrk.format("POST", "/cpu", JSON_HEADERS, body)
end

function builders.register()
  local body = string.format('{"user": "r%d_%d_%d", "passwd": "%s"}', cfg.run, index, sent, cfg.password)
  return wrk.format("POST", "/register", JSON_HEADERS, body)
end

function builders.login()
  local body = string.format('{"user": "%s", "passwd": "%s"}', cfg.user, cfg.password)
  return wrk.format("POST", "/login", JSON_HEADERS, body)
end

function builders.get()
  if cfg.paths then
    return wrk.format("GET", cfg.paths[(index + sent) % #cfg.paths + 1])
  end
  return wrk.format("GET", cfg.path)
end

local build = builders[cfg.kind]

function request()
  local text = build()
  sent = sent + 1
  return text
end

-- What identifies an acknowledged write in a 200's body.
local ACK_PATTERNS = {
  post = '"time":%s*([%d%.eE+-]+)',
  -- The answer names no sample: an acknowledged request is counted (the check counts complete samples).
  post_metrics = '^%s*{%s*"stored":%s*(1)%s*}%s*$',
  register = '"hash":%s*"([%x-]+)"',
  login = '"hash":%s*"([%x-]+)"',
}
local ack_pattern = ACK_PATTERNS[cfg.kind]

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 and ack_pattern then
    local id = string.match(body, ack_pattern)
    if id then
      acked[#acked + 1] = id
    end
  end
end

function done(summary, latency, requests)
  local out = assert(io.open(cfg.out, "w"))
  local thread_parts = {}
  local ids = {}
  for _, thread in ipairs(threads) do
    local codes = {}
    for code, count in pairs(thread:get("statuses")) do
      codes[#codes + 1] = string.format('"%d": %d', code, count)
    end
    local thread_acked = thread:get("acked")
    thread_parts[#thread_parts + 1] = string.format(
      '{"index": %d, "sent": %d, "acked": %d, "statuses": {%s}}',
      thread:get("index"), thread:get("sent"), #thread_acked, table.concat(codes, ", ")
    )
    for _, id in ipairs(thread_acked) do
      ids[#ids + 1] = id
    end
  end
  local e = summary.errors
  out:write(string.format(
    '{"duration_us": %d, "requests": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"p50": %d, "p90": %d, "p95": %d, "p99": %d, "max": %d, "mean": %.1f}, '
      .. '"threads": [%s]}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean,
    table.concat(thread_parts, ", ")
  ))
  for _, id in ipairs(ids) do
    out:write(id, "\n")
  end
  out:close()
end
