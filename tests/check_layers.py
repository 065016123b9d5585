#!/usr/bin/env python3
"""check_layers.py SRCDIR - the layering of DESIGN.md section 1, checked.

lib/ folders depend one way: util <- hosts <- launch <- comm <- formats
<- gpu <- model <- run <- cli.  A file may include headers of its own
layer and of the layers below it, never above; and no two headers include
each other, directly or through others (no include cycles).  Prints every
violation and exits 1, else prints a summary and exits 0."""
import os, re, sys

ORDER = ['util', 'hosts', 'launch', 'comm', 'formats', 'gpu', 'model', 'run', 'cli']
root = sys.argv[1] if len(sys.argv) > 1 else '.'
inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

def layer(path):
    p = path.split('/')
    if p[0] == 'lib' and len(p) > 2:
        return p[1]
    if p[0] in ('gpu', 'cli'):
        return p[0]
    return None

files = []
for d in ('lib', 'gpu', 'cli'):
    for r, _, fs in os.walk(os.path.join(root, d)):
        for f in fs:
            if f.endswith(('.c', '.h', '.cu')):
                files.append(os.path.relpath(os.path.join(r, f), root))

def resolve(src, name):
    for cand in (name, os.path.join(os.path.dirname(src), name)):
        if os.path.exists(os.path.join(root, cand)):
            return os.path.normpath(cand)
    return None

bad = []
graph = {}
for f in files:
    text = open(os.path.join(root, f), errors='replace').read()
    deps = []
    for name in inc.findall(text):
        t = resolve(f, name)
        if not t:
            continue  # config.h and generated headers
        deps.append(t)
        a, b = layer(f), layer(t)
        if a and b and ORDER.index(b) > ORDER.index(a):
            bad.append(f'{f}: includes {t} ({b} is above {a})')
    graph[f] = deps

# cycles among modules (a module is X.c with X.h): X includes Y.h and Y
# includes X.h, directly or through others
def mod(path):
    return os.path.splitext(path)[0]
mgraph = {}
for f, deps in graph.items():
    mgraph.setdefault(mod(f), set()).update(mod(d) for d in deps if mod(d) != mod(f))
state, stack, cycles = {}, [], set()
def dfs(n):
    state[n] = 1
    stack.append(n)
    for m in sorted(mgraph.get(n, [])):
        if state.get(m) == 1:
            cyc = stack[stack.index(m):] + [m]
            cycles.add(' -> '.join(cyc))
        elif not state.get(m):
            dfs(m)
    stack.pop()
    state[n] = 2
for h in sorted(mgraph):
    if not state.get(h):
        dfs(h)
bad += [f'include cycle: {c}' for c in sorted(cycles)]
for b in bad:
    print(b)
print(f'{len(files)} files, {sum(len(v) for v in graph.values())} includes, '
      f'{len(bad)} violations')
sys.exit(1 if bad else 0)
