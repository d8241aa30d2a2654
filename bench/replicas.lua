-- wrk script for bench/replicas.sh: bench/flood.lua's requests and RESULT line, with wrk's threads
-- spread over several servers. wrk connects every thread to the URL's host:port unless setup()
-- sets the thread's address: thread i goes to REPLICA_PORTS' port (i mod N) on 127.0.0.1, so
-- with -t a multiple of N every server gets the same number of threads and connections (wrk
-- gives each thread -c/-t of them). The URL's path (the trigger token) is the same on every
-- replica; its Host header names the first port, which tripline does not look at.
--   REPLICA_PORTS  the servers' ports, space-separated (one port: all threads to it)
dofile("bench/flood.lua")

local flood_setup = setup
local addrs = {}
for port in string.gmatch(os.getenv("REPLICA_PORTS") or "", "%d+") do
  addrs[#addrs + 1] = wrk.lookup("127.0.0.1", port)[1]
end
local next_thread = 0

function setup(thread)
  flood_setup(thread)
  if #addrs > 0 then
    thread.addr = addrs[next_thread % #addrs + 1]
  end
  next_thread = next_thread + 1
end
