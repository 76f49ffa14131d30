# Sourced by the benchmark scripts: a fresh install in $data with an admin
# signed in, server-everything as `ev`, and an agent allowed `ev__echo`,
# whose credential ends up in $token. Needs $bin (the warden binaries) and
# $data (an empty folder).
w() { "$bin/warden" --data-dir "$data" "$@"; }
password="pw-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
secret=$(printf '%s\n' "$password" | w init --admin operator --password-stdin --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["totp_secret"])')
code=$(python3 - "$secret" <<'PY'
import base64, hashlib, hmac, struct, sys, time
key = base64.b32decode(sys.argv[1] + "=" * (-len(sys.argv[1]) % 8))
d = hmac.new(key, struct.pack(">Q", int(time.time() // 30)), hashlib.sha1).digest()
o = d[-1] & 15
print(f"{(struct.unpack('>I', d[o:o + 4])[0] & 0x7FFFFFFF) % 1000000:06d}")
PY
)
# The code follows the password on stdin (a Warden from before codes left the
# command line takes it as --totp CODE: bench-compare measures those too).
printf '%s\n%s\n' "$password" "$code" | w login operator --password-stdin >/dev/null 2>&1 ||
  printf '%s\n' "$password" | w login operator --password-stdin --totp "$code" >/dev/null
everything="$PWD/tests/node_modules/.bin/mcp-server-everything"
w server add ev -- "$everything" stdio >/dev/null
w role add load >/dev/null
w grant load ev echo allow >/dev/null
token=$(w agent add load --role load --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["credential"])')
