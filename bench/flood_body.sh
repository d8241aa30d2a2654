# The flood benches' request bodies (sourced by bench/flood.sh and bench/threads.sh, with
# bench/flood.lua sending them): 300 bytes of JSON. For a signed run, request i carries i in "n"
# (a string of 10 digits, so every body is 300 bytes) and its precomputed signature.

# Prints the body's printf template (%010d where i goes).
flood_template() {
  python3 -c '
head = "{\"action\":\"bench\",\"ref\":\"refs/heads/main\",\"n\":\"%010d\",\"pad\":\""
tail = "\"}"
print(head + "x" * (300 - len(head % 0) - len(tail)) + tail)'
}

# flood_signatures SECRET TEMPLATE N: prints the hex HMAC-SHA256 (X-Hub-Signature-256) of bodies
# 0..N-1, one per line.
flood_signatures() {
  python3 - "$1" "$2" "$3" <<'PY'
import hashlib, hmac, sys
key, template, n = sys.argv[1].encode(), sys.argv[2], int(sys.argv[3])
out = sys.stdout
for i in range(n):
    out.write(hmac.new(key, (template % i).encode(), hashlib.sha256).hexdigest() + "\n")
PY
}

# Prints body 0: the one body of an unsigned run.
flood_body() {
  # shellcheck disable=SC2059 # the template is the format
  printf "$(flood_template)" 0
}
