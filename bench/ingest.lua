-- wrk script for bench/ingest.py: POST one new invoice per request.
--
--   wrk -t2 -c32 -d20s -s bench/ingest.lua http://127.0.0.1:PORT -- PATH PREFIX KEY CUSTOMER [IDEMPOTENCY]
--
-- Every request carries a unique external_id (PREFIX-thread-counter), so each
-- one creates an invoice.  Responses are counted by status, and done() prints
-- one line "BENCH_RESULT {json}" for bench/ingest.py to read.  The external_ids
-- of the 2xx responses (read back from the response bodies) are written, one
-- a line, to the file named by $BENCH_ACKED_FILE, so bench/ingest.py can check
-- that each has its row.

local threads = {}
local next_thread = 0

function setup(thread)
   next_thread = next_thread + 1
   thread:set("tid", next_thread)
   table.insert(threads, thread)
end

local path, prefix, key, customer, idempotency
local counter = 0
sent = 0
ok = 0          -- 2xx
created = 0     -- 201
statuses = {}   -- status code (as a string) -> count, for the non-2xx
acked = {}      -- external_ids of the 2xx responses

function init(args)
   path, prefix, key, customer = args[1], args[2], args[3], args[4]
   idempotency = args[5] == "1"
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   if key ~= nil and key ~= "" then
      wrk.headers["Authorization"] = "Bearer " .. key
   end
end

local body_format = '{"external_id":"%s","customer":"%s","number":"INV-%d-%d","currency":"THB",'
   .. '"amount_due":%d,"issued_at":"2026-03-01T09:00:00+07:00","due_at":"2026-03-31T09:00:00+07:00",'
   .. '"collection_method":"send_invoice","lines":[{"description":"Pro plan, March 2026",'
   .. '"quantity":1,"amount":%d}]}'

function request()
   counter = counter + 1
   sent = sent + 1
   local external_id = string.format("%s-%d-%d", prefix, tid, counter)
   local amount = 100000 + (counter % 900) * 100
   local body = string.format(body_format, external_id, customer, tid, counter, amount, amount)
   local headers = nil  -- wrk.format's headers replace wrk.headers, so copy them
   if idempotency then
      headers = {}
      for name, value in pairs(wrk.headers) do
         headers[name] = value
      end
      headers["Idempotency-Key"] = external_id
   end
   return wrk.format(nil, path, headers, body)
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      ok = ok + 1
      local id = string.match(body, '"external_id":%s*"([^"]+)"')
      if id ~= nil then
         acked[#acked + 1] = id
      end
      if status == 201 then
         created = created + 1
      end
   else
      local s = tostring(status)
      statuses[s] = (statuses[s] or 0) + 1
   end
end

function done(summary, latency, requests)
   local total_sent, total_ok, total_created = 0, 0, 0
   local other = {}
   local path = os.getenv("BENCH_ACKED_FILE")
   local out = path and io.open(path, "w")
   for _, thread in ipairs(threads) do
      if out then
         for _, id in ipairs(thread:get("acked")) do
            out:write(id, "\n")
         end
      end
      total_sent = total_sent + thread:get("sent")
      total_ok = total_ok + thread:get("ok")
      total_created = total_created + thread:get("created")
      for s, n in pairs(thread:get("statuses")) do
         other[s] = (other[s] or 0) + n
      end
   end
   if out then
      out:close()
   end
   local parts = {}
   for s, n in pairs(other) do
      table.insert(parts, string.format('"%s":%d', s, n))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"sent":%d,"ok":%d,"created":%d,'
      .. '"non_2xx":{%s},"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
      summary.requests, summary.duration, total_sent, total_ok, total_created,
      table.concat(parts, ","), e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean))
end
