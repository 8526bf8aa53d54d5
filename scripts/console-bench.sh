#!/usr/bin/env bash
# console-bench.sh: what an open live feed costs order processing (issue 18:
# at most 5%). It starts `coinsaga serve --sandbox`, then runs `coinsaga
# bench` against it ROUNDS times with and without an open /live/events feed
# (curl -sN), alternating which goes first, and reports serve's CPU per
# order: utime+stime from /proc/PID/stat before and after each bench run,
# divided by the orders. CPU, not wall time: the machine may be shared.
#
#   scripts/console-bench.sh                 # 5 rounds of 5000 orders at 1000/s
#   ROUNDS=3 ORDERS=3000 scripts/console-bench.sh
#   BIN=/tmp/cs scripts/console-bench.sh     # an already built binary
#   SANDBOX=inprocess scripts/console-bench.sh
#
# SANDBOX=separate (the default) runs the sandbox providers as their own
# process (`coinsaga sandbox`), so that serve's CPU is order processing,
# JetStream and the console only. SANDBOX=inprocess runs `serve --sandbox`:
# its sandbox rewrites its whole persisted ledger every few moments, a cost
# that grows with every order the run has made, so CPU per order then
# creeps up from round to round (the alternation evens that out only in
# part).
#
# Each line: round, mode, serve CPU ms, orders, CPU µs per order, and with a
# feed the status events the feed delivered. The summary gives the median
# of each mode and the ratio with/without.
set -euo pipefail

ROUNDS=${ROUNDS:-5}
ORDERS=${ORDERS:-5000}
RATE=${RATE:-1000}
NATS_PORT=${NATS_PORT:-14222}
SANDBOX_PORT=${SANDBOX_PORT:-19311}
HTTP_PORT=${HTTP_PORT:-18080}
FEED_QUERY=${FEED_QUERY:-} # e.g. "state=completed": a filtered feed
BIN=${BIN:-}
SANDBOX=${SANDBOX:-separate}

here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
serve_pid=""
feed_pid=""
sandbox_pid=""
cleanup() {
	[[ -n $feed_pid ]] && kill "$feed_pid" 2>/dev/null || true
	[[ -n $sandbox_pid ]] && kill "$sandbox_pid" 2>/dev/null || true
	if [[ -n $serve_pid ]]; then
		kill "$serve_pid" 2>/dev/null || true
		wait "$serve_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

if [[ -z $BIN ]]; then
	BIN=$work/coinsaga
	(cd "$here" && go build -o "$BIN" ./cmd/coinsaga)
fi

# cpu_ticks PID: utime+stime of PID in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the command name's closing parenthesis).
cpu_ticks() {
	local stat
	stat=$(<"/proc/$1/stat")
	stat=${stat##*) }
	awk '{print $12 + $13}' <<<"$stat"
}
hz=$(getconf CLK_TCK)

case $SANDBOX in
separate)
	"$BIN" sandbox --listen "127.0.0.1:$SANDBOX_PORT" --log-level warn >"$work/sandbox.log" 2>&1 &
	sandbox_pid=$!
	providers=(--sandbox-url "http://127.0.0.1:$SANDBOX_PORT")
	;;
inprocess) providers=(--sandbox --sandbox-listen "127.0.0.1:$SANDBOX_PORT") ;;
*) echo "SANDBOX is separate or inprocess, not $SANDBOX" >&2; exit 2 ;;
esac
"$BIN" serve "${providers[@]}" --data-dir "$work/data" \
	--nats-listen "127.0.0.1:$NATS_PORT" --http-listen "127.0.0.1:$HTTP_PORT" \
	--log-level warn >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 300); do
	curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 && break
	kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log"; exit 1; }
	sleep 0.1
done
curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null || { echo "serve not ready" >&2; cat "$work/serve.log"; exit 1; }

bench() {
	"$BIN" bench --nats-url "nats://127.0.0.1:$NATS_PORT" --sandbox-url "http://127.0.0.1:$SANDBOX_PORT" \
		--orders "$1" --rate "$RATE" >"$work/bench.out" 2>&1 || { cat "$work/bench.out" >&2; exit 1; }
}

# A warm-up run, not counted: the store, the heap and the streams reach
# their working size.
bench 1000

# run ROUND MODE: one measured bench run; MODE is "without" or "with".
run() {
	local round=$1 mode=$2 before after events=""
	if [[ $mode == with ]]; then
		: >"$work/feed.out"
		curl -sN "http://127.0.0.1:$HTTP_PORT/live/events?$FEED_QUERY" >"$work/feed.out" &
		feed_pid=$!
		for _ in $(seq 100); do
			grep -q '^event: ready' "$work/feed.out" && break
			sleep 0.05
		done
	fi
	before=$(cpu_ticks "$serve_pid")
	bench "$ORDERS"
	after=$(cpu_ticks "$serve_pid")
	if [[ $mode == with ]]; then
		sleep 1 # the feed's last flush
		kill "$feed_pid" 2>/dev/null || true
		wait "$feed_pid" 2>/dev/null || true
		feed_pid=""
		events=$(grep -c '^data: {"out_order_id"' "$work/feed.out" || true)
	fi
	awk -v r="$round" -v m="$mode" -v t=$((after - before)) -v hz="$hz" -v n="$ORDERS" -v ev="$events" \
		'BEGIN { ms = t * 1000 / hz; printf "%s\t%s\t%.0f\t%d\t%.1f\t%s\n", r, m, ms, n, ms * 1000 / n, ev }'
}

printf 'round\tmode\tcpu_ms\torders\tus/order\tfeed_events\n'
for round in $(seq "$ROUNDS"); do
	if ((round % 2)); then
		order=(without with)
	else
		order=(with without)
	fi
	for mode in "${order[@]}"; do
		run "$round" "$mode"
	done
done | tee "$work/results.tsv"

awk -F'\t' '
	NR > 1 { v[$2, ++n[$2]] = $5 }
	function median(m,   k, i, j, t, a) {
		k = n[m]; for (i = 1; i <= k; i++) a[i] = v[m, i]
		for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	}
	END {
		w = median("without"); f = median("with")
		printf "median us/order: without %.1f, with a feed %.1f: %+.1f%%\n", w, f, (f / w - 1) * 100
	}' <(printf 'h\n'; cat "$work/results.tsv")
