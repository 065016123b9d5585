#!/bin/sh
# dcrun report: the table of a real 3-rank infer report (every rank, its
# I/O way and read/compute/write split, the phases, a bottleneck line),
# --json, the chunk timeline agrees with the report's chunk count; real
# runs with --io relay and --io direct, one process, train; --svg is valid
# XML (chunks as read/compute/write segments) and renders in headless
# Chromium to a PNG that is not blank; hand-made reports (old ones without
# the I/O members, new ones) for the straggler, relay, read, lost and
# no-chunk-list cases; hostile texts escaped in the SVG and made printable
# in the table; bad input exits 3 naming the file; exec --trace (Chrome
# trace: one thread per rank, a failure marked) and exec --report read back
# by dcrun report.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
[ -x "$PY" ] && $PY -c 'import numpy' 2>/dev/null \
    || skip_all "no NumPy for /usr/bin/python3 (apt-get install python3-numpy)"
D=$DCRUN
T=$T_TMP
cd "$T" || exit 1
$PY "$DCRUN_SRCDIR/examples/make-example.py" --out . --rows 3000 \
    --sizes 64,128,32 --seed 7 > /dev/null || skip_all "make-example.py failed"
ARGS="--model model.safetensors --input X.npy --device cpu --threads 1"

expect_rc 0 "infer on 3 ranks with --report" \
    $D infer -H localhost:3 $ARGS --output Y.npy --chunk-rows 300 --report r.json
expect_rc 0 "dcrun report R.json" $D report r.json
for r in 0 1 2; do
    expect_out "^$r +localhost +" "the table has rank $r"
done
expect_out '^RANK +HOST +DEVICE +ROWS +BUSY_S +IDLE_S +TFLOP/S +SHARE +IO +READ_S +COMPUTE_S +WRITE_S$' \
    "the table's columns: the I/O way and the read/compute/write split"
expect_out "^ranks' busy time: [0-9.]+ s: read [0-9.]+ s \([0-9]+%\), compute" \
    "the ranks' busy time split"
expect_out '^phases: launch [0-9.]+ s \([0-9]+%\)' "the job's phases"
expect_out '^lost: none$' "no rank lost"
expect_out '^bottleneck: [a-z0-9]' "one line names the bottleneck"
expect_eq "$(grep -c '^bottleneck:' "$T/out")" 1 "exactly one bottleneck line"
expect_eq "$($PY -c "
import json
r = json.load(open('r.json'))
spans = [c for k in r['ranks'] for c in k.get('chunks', []) if c['end'] is not None]
ok = all(c['start'] <= c['end'] <= r['totals']['seconds'] + 1 for c in spans)
print(len(spans), r['distributed']['chunks'], ok)")" "10 10 True" \
    "the report's chunk timeline: one finished span per chunk, in the run"
expect_rc 0 "--json" $D report --json r.json
expect_eq "$($PY -c "
import json
a = json.load(open('$T/out'))
print(len(a['ranks']), bool(a['bottleneck']['text']), a['chunks'], a['rows'])")" \
    "3 True 10 3000" "--json: the ranks, the bottleneck, the chunks, the rows"

# --io relay and --io direct: the table says how each rank's rows went
for io in relay direct; do
    expect_rc 0 "infer --io $io --report" $D infer -H localhost:3 --io $io $ARGS \
        --output Y-$io.npy --chunk-rows 300 --report r-$io.json
    expect_rc 0 "dcrun report on the --io $io report" $D report r-$io.json
    expect_out "^io: $io \(--io $io\), [0-9.]+ [KMG]iB of rows through the head \([0-9]+ bytes\), the head's CPU" \
        "--io $io: the way, the bytes relayed, the head's CPU"
    # every rank that did rows: its way, and read + compute + write = busy
    $PY - r-$io.json "$T/out" $io > "$T/check" << 'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
rows = {}
for line in open(sys.argv[2]):
    f = line.split()
    if f and f[0].isdigit() and len(f) >= 12:
        rows[int(f[0])] = f
ok = True
for k in r['ranks']:
    f = rows.get(k['rank'])
    if f is None:
        ok = False
        continue
    busy, rd, comp, wr = float(f[-8]), float(f[-3]), float(f[-2]), float(f[-1])
    if k['rows'] > 0 and (f[-4] != sys.argv[3] or abs(rd + comp + wr - busy) > 0.003):
        ok = False
    if k['rows'] > 0 and busy + 0.0005 < k['seconds']:
        ok = False
print(ok, len(rows) == len(r['ranks']))
EOF
    expect_eq "$(cat "$T/check")" "True True" \
        "--io $io: each working rank's way, its split adds up to its busy time"
    expect_eq "$(grep -c '^bottleneck:' "$T/out")" 1 "--io $io: one bottleneck line"
    expect_rc 0 "--json on the --io $io report" $D report --json r-$io.json
    expect_eq "$($PY -c "
import json
a = json.load(open('$T/out')); r = json.load(open('r-$io.json'))
d = r['distributed']
print(a['io'] == d['io'], a['relayed_bytes'] == sum(x['relayed_bytes'] for x in d['rank_io']),
      a['hub_cpu_seconds'] == d['hub_cpu_seconds'], 'ranks_busy' in a)")" \
        "True True True True" "--io $io: --json carries the way, the bytes, the head's CPU"
done
expect_eq "$($PY -c "
import json
print(json.load(open('r-relay.json'))['distributed']['io'], json.load(open('r-direct.json'))['distributed']['io'])")" \
    "relay direct" "the two runs went the two ways"

# one process: its chunks' phases give the split
expect_rc 0 "infer in one process with --report" $D infer $ARGS --output Y1.npy --report r1.json
expect_rc 0 "dcrun report on a one-process report" $D report r1.json
expect_out '^0 +[^ ]+ +cpu: .* 100\.0% +- +[0-9.]+ +[0-9.]+ +[0-9.]+$' \
    "one rank, all the rows, no I/O way, its split"
expect_out '^bottleneck: [a-z]' "one process: a bottleneck line"
expect_rc 0 "--svg of a one-process report" $D report r1.json --svg one.svg
expect_eq "$(grep -c '<title>chunk read ' one.svg) $(grep -c '<title>chunk compute ' one.svg)" \
    "$($PY -c "
import json
c = json.load(open('r1.json'))['ranks'][0]['chunks']
print(sum(x['phases']['read'] > 0 for x in c), sum(x['phases']['compute'] > 0 for x in c))")" \
    "one process: a read and a compute segment per chunk that had them"

# a train in one process reads too
expect_rc 0 "train in one process with --report" $D train \
    --model model.safetensors --input X.npy --target T.npy --device cpu \
    --threads 1 --batch-size 256 --epochs 1 --output M1.safetensors --report rt1.json
expect_rc 0 "dcrun report on a one-process train report" $D report rt1.json
expect_out '^0 +[^ ]+ +cpu: .* +3000 +[0-9.]+ +[0-9.]+ ' "the trainer's rows and busy time"
expect_out '^bottleneck: [a-z]' "names the train's bottleneck"

# a distributed train's report reads too
expect_rc 0 "train on 2 ranks with --report" $D train -H localhost:2 \
    --model model.safetensors --input X.npy --target T.npy --device cpu \
    --threads 1 --batch-size 256 --epochs 1 --output M.safetensors --report rt.json
expect_rc 0 "dcrun report on a train report" $D report rt.json
expect_out '^report: rt\.json \(train, layout data, 2 ranks' "the job's ranks"
expect_out '^bottleneck: [a-z0-9]' "names the train's bottleneck"

# the timeline picture
expect_rc 0 "--svg after the report" $D report r.json --svg t.svg
expect_out '^bottleneck:' "--svg still prints the table"
if command -v xmllint > /dev/null; then
    if xmllint --noout t.svg 2> "$T/xml.err"; then ok "the SVG is well-formed XML (xmllint)"
    else not_ok "xmllint: $(head -3 "$T/xml.err")"; fi
else
    ok "xmllint # SKIP no xmllint (apt-get install libxml2-utils)"
fi
expect_eq "$(grep -c '<title>chunk compute' t.svg)" 10 "one compute bar per chunk"
expect_eq "$(grep -cE '>rank [0-2] @ localhost \((direct|relay|none)\)<' t.svg)" 3 \
    "one row per rank, labelled with its I/O way"
expect_eq "$(grep -c '<title>chunk read ' t.svg)" \
    "$($PY -c "
import json
r = json.load(open('r.json'))
print(sum(c['phases']['read'] > 0 for k in r['ranks'] for c in k.get('chunks', []) if 'phases' in c))")" \
    "a read segment per chunk that read"
expect_rc 0 "--svg of the relay run" $D report r-relay.json --svg relay.svg
if command -v xmllint > /dev/null; then
    if xmllint --noout relay.svg 2> "$T/xml.err"; then ok "the relay run's SVG is well-formed XML"
    else not_ok "xmllint: $(head -3 "$T/xml.err")"; fi
fi
expect_eq "$(grep -c '<title>chunk compute' relay.svg)" 10 "relay: one compute segment per chunk"

# the number of distinct colours of a PNG (PIL, or zlib by hand)
colours () {
    $PY - "$1" << 'EOF'
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
pos, idat, ihdr = 8, b'', None
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b'IHDR':
        ihdr = struct.unpack('>IIBBBBB', body)
    elif kind == b'IDAT':
        idat += body
    pos += 12 + n
w, h, depth, ctype = ihdr[0], ihdr[1], ihdr[2], ihdr[3]
assert depth == 8 and ctype in (2, 6), 'unexpected PNG type'
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(idat)
stride = w * bpp
prev = bytearray(stride)
seen = set()
i = 0
for y in range(h):
    f = raw[i]; i += 1
    line = bytearray(raw[i:i + stride]); i += stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        seen.add(bytes(line[x:x + 3]))
    prev = line
print(len(seen))
EOF
}
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$CHROMIUM" ]; then
    timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
        --disable-quic --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync \
        --user-data-dir="$(mktemp -d "$T/chrome.XXXXXX")" \
        --screenshot="$T/t.png" --window-size=1200,800 "file://$T/t.svg" \
        > "$T/chrome.log" 2>&1
    if [ -s "$T/t.png" ]; then
        n=$(colours "$T/t.png")
        if [ "${n:-0}" -ge 6 ]; then ok "Chromium renders the SVG ($n colours)"
        else not_ok "the rendered PNG looks blank: ${n:-?} colours"; fi
    else
        not_ok "Chromium wrote no PNG: $(tail -2 "$T/chrome.log")"
    fi
else
    ok "render in Chromium # SKIP no chromium (apt-get install chromium)"
fi

# hand-made reports: a straggler, the hub's relay, a lost rank, no chunks
rk () { # rank host rows seconds
    printf '{"rank":%s,"host":"%s","device":"cpu","rows":%s,"seconds":%s,"tflops":0.1}' "$@"
}
ph () { # launch load compute gather write
    printf '"phases":{"launch":%s,"load":%s,"copy_in":0,"compute":%s,"copy_out":0,"gather":%s,"write":%s}' "$@"
}
printf '{"command":"infer","ranks":[%s,%s,%s,%s],%s,"totals":{"seconds":9.1}}\n' \
    "$(rk 0 node01 1000 4)" "$(rk 1 node02 1000 4)" "$(rk 2 node03 1000 4)" \
    "$(rk 3 node07 1000 8.4)" "$(ph 0.2 0.3 8.5 0 0.1)" > straggler.json
expect_rc 0 "a straggler's report" $D report straggler.json --svg s.svg
expect_out '^bottleneck: rank 3 on node07 was 2\.1x slower than the median' \
    "names the straggler and how much slower"
expect_eq "$(grep -c '<title>busy' s.svg)" 4 \
    "no chunk list: one bar of busy time per rank"
printf '{"command":"infer","ranks":[%s,%s],%s,"totals":{"seconds":10}}\n' \
    "$(rk 0 a 1000 1)" "$(rk 1 b 1000 1)" "$(ph 0.1 0.1 9.6 0 0.2)" > relay.json
expect_rc 0 "a relay-bound report" $D report relay.json
expect_out "^bottleneck: the coordinator's relay took 86% of the wall time" \
    "names the coordinator's relay"
printf '{"command":"infer","ranks":[%s,%s,%s],%s,"totals":{"seconds":10},"distributed":{"lost_workers":[{"rank":1,"host":"b","reason":"killed by signal 9"}]}}\n' \
    "$(rk 0 a 1000 9)" "$(rk 1 b 0 0)" "$(rk 2 c 1000 9)" "$(ph 0.2 0.3 9.4 0 0.1)" > lost.json
expect_rc 0 "a report with a lost rank" $D report lost.json --svg l.svg
expect_out '^lost: rank 1 on b \(killed by signal 9\)$' "lists the lost rank"
expect_out '^1 +b .*LOST$' "marks it in the table"
expect_eq "$(grep -c 'lost: killed by signal 9' l.svg)" 1 "the SVG marks it"
printf '{"command":"infer","ranks":[%s,%s],%s,"totals":{"seconds":10}}\n' \
    "$(rk 0 a 1000 9)" "$(rk 1 b 1000 9.1)" "$(ph 0.2 0.3 9.4 0 0.1)" > even.json
expect_rc 0 "an even report" $D report even.json
expect_out '^bottleneck: compute-bound: the compute phase took 94% of the wall time, the ranks within 10% of each other' \
    "says the job is compute-bound, the ranks even"

# new reports: the head's relay with the bytes, reads that dominate
rp () { # rank host rows seconds read compute write
    printf '{"rank":%s,"host":"%s","device":"cpu","rows":%s,"seconds":%s,"tflops":0.1,"phases":{"read":%s,"copy_in":0,"compute":%s,"copy_out":0,"write":%s}}' "$@"
}
rio () { # io relayed_bytes
    printf '{"io":"%s","read":0,"compute":1,"write":0,"relayed_bytes":%s}' "$@"
}
printf '{"command":"infer","ranks":[%s,%s],%s,"totals":{"seconds":10},"distributed":{"io":"relay","io_mode":"relay","hub_cpu_seconds":7.5,"rank_io":[%s,%s]}}\n' \
    "$(rp 0 a 1000 1 0 1 0)" "$(rp 1 b 1000 1 0 1 0)" "$(ph 0.1 0.1 9.6 0 0.2)" \
    "$(rio relay 805306368)" "$(rio relay 805306368)" > relay-new.json
expect_rc 0 "a relay-bound report with the I/O members" $D report relay-new.json
expect_out "^bottleneck: the head relayed 1\.50 GiB of rows: the relay took 86% of the wall time .*: use --io direct \(the ranks see the same files\)$" \
    "names the bytes relayed and says --io direct"
expect_out "^io: relay \(--io relay\), 1\.50 GiB of rows through the head \(1610612736 bytes\), the head's CPU 7\.500 s \(75% of the wall time\)$" \
    "the I/O line"
expect_out '^1 +b +cpu .* +relay +0\.000 +1\.000 +0\.000$' "the rank's way and split"
printf '{"command":"infer","ranks":[%s,%s,%s],%s,"totals":{"seconds":5}}\n' \
    "$(rp 0 a 1000 1 3 1 0)" "$(rp 1 b 1000 1 3 1 0)" "$(rp 2 c 1000 1 3 1 0)" \
    "$(ph 0.2 0.3 4.2 0 0.1)" > read.json
expect_rc 0 "a read-bound report" $D report read.json
expect_out "^bottleneck: reading the input took 75% of the ranks' busy time \(9 of 12 s\): the storage is the limit$" \
    "says the storage is the limit"
expect_out '^0 +a +cpu .* +4\.000 +1\.000 .* +- +3\.000 +1\.000 +0\.000$' \
    "busy is the rank's read + compute + write, idle the rest"

# hostile texts: markup escaped in the SVG (tooltips too), control bytes
# not printed to the terminal
printf '{"command":"exec","ranks":[{"rank":0,"host":"n\\u001b[31m<i>","failed_start":"<b>&\\"x</b>","start":0,"end":1},{"rank":1,"host":"ok","status":0,"start":0,"end":1}],"totals":{"seconds":1}}\n' > hostile.json
expect_rc 0 "a report with hostile texts" $D report hostile.json --svg h.svg
expect_out '^0 +n\?\[31m<i> +failed to start: <b>&' "the table prints them made printable"
expect_eq "$(grep -c "$(printf '\033')" "$T/out")" 0 "no escape byte reaches the terminal"
expect_eq "$(grep -c '<b>\|<i>' h.svg)" 0 "no markup from the report in the SVG"
expect_eq "$(grep -c '<title>failed to start: &lt;b&gt;&amp;&quot;x' h.svg)" 1 "the tooltip escapes the reason"
if command -v xmllint > /dev/null; then
    if xmllint --noout h.svg 2> "$T/xml.err"; then ok "the hostile report's SVG is well-formed XML"
    else not_ok "xmllint: $(head -3 "$T/xml.err")"; fi
fi

# bad input: exit 3, "dcrun: FILE: reason", no SVG written or clobbered
echo 'keep' > keep.svg
printf 'not json' > bad1.json
expect_rc 3 "not JSON" $D report bad1.json --svg keep.svg
expect_err '^dcrun: bad1\.json: not JSON$' "says it is not JSON"
expect_eq "$(cat keep.svg)" keep "a bad report leaves --svg's file alone"
echo '[1, 2]' > bad2.json
expect_rc 3 "JSON that is not a report" $D report bad2.json
expect_err '^dcrun: bad2\.json: not a dcrun report' "says it is not a report"
echo '{"command":"infer","ranks":[{"rank":0,"host":"a"}],"totals":{"seconds":1}}' > bad3.json
expect_rc 3 "a rank without rows" $D report bad3.json
expect_err '^dcrun: bad3\.json: rank 0: no "rows" or "seconds"' "names the missing member"
echo '{"command":"infer","ranks":[]}' > bad4.json
expect_rc 3 "no totals" $D report bad4.json
expect_err 'bad4\.json: no "totals"\."seconds"' "names the missing totals"
mkfifo fifo.json
expect_rc 3 "a FIFO (no hang)" timeout 10 $D report fifo.json
expect_err '^dcrun: fifo\.json: not a regular file' "refuses the FIFO"
expect_rc 3 "a missing file" $D report missing.json
expect_err '^dcrun: missing\.json: ' "names the missing file"
expect_rc 3 "--svg into a missing folder" $D report r.json --svg no/such/t.svg
expect_err 'no/such/t\.svg' "names the SVG path"
expect_eq "$(ls no 2>/dev/null)" "" "nothing written"
expect_rc 2 "no report given" $D report
expect_rc 2 "two reports" $D report r.json r.json

# exec --trace and --report
expect_rc 3 "exec with a failing rank (its status), --trace and --report" \
    $D exec -H localhost:3 --no-kill-on-bad-exit --trace tr.json --report er.json \
    -- sh -c '[ "$DCRUN_RANK" = 2 ] && exit 3; exit 0'
expect_eq "$($PY -c "
import json
t = json.load(open('tr.json'))['traceEvents']
threads = sorted(e['tid'] for e in t if e['ph'] == 'M' and e['name'] == 'thread_name')
procs = [e['args']['name'] for e in t if e['ph'] == 'M' and e['name'] == 'process_name']
spans = sorted((e['tid'], e['args'].get('status')) for e in t if e['ph'] == 'X')
inst = [(e['tid'], e['name']) for e in t if e['ph'] == 'i']
ok = all(e['dur'] >= 0 and e['ts'] >= 0 for e in t if e['ph'] == 'X')
print(threads, procs, spans, inst, ok)")" \
    "[1, 2, 3] ['localhost'] [(1, 0), (2, 0), (3, 3)] [(3, 'failed')] True" \
    "the trace: one thread per rank, its exit status, the failure marked"
expect_rc 0 "dcrun report on an exec report" $D report er.json
expect_out '^2 +localhost +exit 3 ' "the table has the exit status"
expect_out '^bottleneck: rank 2 on localhost failed \(exit 3\)$' "names the failed rank"
expect_eq "$($PY -c "
import json
r = json.load(open('er.json'))
print([(k['rank'], k['host'], k.get('status'), k['end'] >= k['start'] >= 0) for k in r['ranks']])")" \
    "[(0, 'localhost', 0, True), (1, 'localhost', 0, True), (2, 'localhost', 3, True)]" \
    "the exec report: host, exit status, start and end per rank"
expect_rc 3 "exec --trace into a missing folder" \
    $D exec -H localhost:2 --trace no/such/tr.json -- true
expect_err 'no/such/tr\.json' "names the trace path"
done_testing
