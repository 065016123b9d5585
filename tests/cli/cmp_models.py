"""cmp_models.py A B TOL: print 'close' when every tensor of the safetensors
files A and B agrees to TOL relative to its largest magnitude, else 'far D'."""
import json
import struct
import sys

import numpy as np


def load(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == '__metadata__':
            continue
        s, e = v['data_offsets']
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=np.float32)
    return out


a, b = load(sys.argv[1]), load(sys.argv[2])
if a.keys() != b.keys():
    print('different tensors')
    sys.exit(0)
d = max(float(np.max(np.abs(a[k] - b[k])) / (np.max(np.abs(a[k])) + 1e-12))
        for k in a)
print('close' if d < float(sys.argv[3]) else 'far %g' % d)
