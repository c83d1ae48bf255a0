-- wrk script for scripts/bench S3: every request POSTs a one-URL fan-out.
--   FANOUT_TARGET=http://127.0.0.1:PORT/status/200 \
--     wrk -t1 -c64 -d5s --latency -s tests/bench/post.lua http://127.0.0.1:DPORT/fetch
-- done() prints "fanout-not-ok: N": answers that were not HTTP 200 with an
-- ok result, so a fast wrong answer cannot pass for a fast right one.

local target = os.getenv("FANOUT_TARGET") or "http://127.0.0.1:9/"

wrk.method = "POST"
wrk.body = '["' .. target .. '"]'
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	bad = 0
end

function response(status, headers, body)
	if status ~= 200 or not string.find(body, '"ok"%s*:%s*true') then
		bad = bad + 1
	end
end

function done(summary, latency, requests)
	local n = 0
	for _, t in ipairs(threads) do
		n = n + t:get("bad")
	end
	io.write(string.format("fanout-not-ok: %d\n", n))
end
