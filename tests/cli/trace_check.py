#!/usr/bin/python3
"""trace_check.py T.json [R.json]: facts about a dcrun --trace file (and
the run's --report), one per line, for tests/cli/trace.sh to compare:

  parses             the trace is JSON with a traceEvents list
  names              every pid has a process_name, every tid a thread_name
  nesting            the spans of each thread nest (never overlap partly)
  events NAME,...    the sorted names of the spans and instants
  chunks N M         chunk spans, chunk records in the report's ranks
  busy               per rank: the trace's busy seconds (phase spans when
                     the rank measured phases, else compute spans) agree
                     with the report's (phases.busy, else seconds) within 5%
  lost R,...         ranks with a "lost" instant
  steps R:N,...      per rank: its "step" spans (cat "step")
"""
import json
import sys

LANE = 100000
EPS_US = 0.01  # rounding of the printed microseconds


def main():
    t = json.load(open(sys.argv[1]))
    r = json.load(open(sys.argv[2])) if len(sys.argv) > 2 else None
    ev = t['traceEvents']
    assert isinstance(ev, list)
    print('parses')

    pnames = {e['pid'] for e in ev if e['ph'] == 'M' and e['name'] == 'process_name'}
    tnames = {(e['pid'], e['tid']) for e in ev if e['ph'] == 'M' and e['name'] == 'thread_name'}
    used = {(e['pid'], e['tid']) for e in ev if e['ph'] in 'Xi'}
    bad = [u for u in used if u not in tnames or u[0] not in pnames]
    print('names' if not bad else 'names missing for %s' % bad)

    # spans of one thread: sorted by start (longest first), each nests in
    # the open one or starts after it ended
    threads = {}
    for e in ev:
        if e['ph'] == 'X':
            assert e['dur'] >= 0 and e['ts'] >= 0, e
            threads.setdefault((e['pid'], e['tid']), []).append(e)
    bad = []
    for key, spans in threads.items():
        spans.sort(key=lambda e: (e['ts'], -e['dur']))
        stack = []
        for e in spans:
            while stack and stack[-1]['ts'] + stack[-1]['dur'] <= e['ts'] + EPS_US:
                stack.pop()
            if stack and e['ts'] + e['dur'] > stack[-1]['ts'] + stack[-1]['dur'] + EPS_US:
                bad.append((key, stack[-1]['name'], stack[-1]['ts'], e['name'], e['ts']))
            stack.append(e)
    print('nesting' if not bad else 'overlap %s' % bad[:3])

    print('events ' + ','.join(sorted({e['name'] for e in ev if e['ph'] in 'Xi'})))

    def rank_of(e):
        return (e['tid'] % LANE) - 1 if e['tid'] > 0 else -1

    chunks = sum(1 for e in ev if e['ph'] == 'X' and e['name'] == 'chunk')
    if r is not None:
        rchunks = sum(len(k.get('chunks', [])) for k in r['ranks'])
        print('chunks %d %d' % (chunks, rchunks))
        bad = []
        for k in r['ranks']:
            n = k['rank']
            if 'phases' in k:
                want, cat = k['phases']['busy'], 'phase'
            else:
                want, cat = k['seconds'], 'compute'
            got = sum(e['dur'] for e in ev if e['ph'] == 'X' and e.get('cat') == cat
                      and rank_of(e) == n) / 1e6
            if abs(got - want) > 0.05 * max(want, 1e-3):
                bad.append((n, got, want))
        print('busy' if not bad else 'busy differs (rank, trace, report): %s' % bad)

    lost = sorted({rank_of(e) for e in ev if e['ph'] == 'i' and e['name'] == 'lost'})
    print('lost ' + ','.join(str(x) for x in lost))
    steps = {}
    for e in ev:
        if e['ph'] == 'X' and e['name'] == 'step' and e.get('cat') == 'step':
            steps[rank_of(e)] = steps.get(rank_of(e), 0) + 1
    print('steps ' + ','.join('%d:%d' % kv for kv in sorted(steps.items())))


main()
