#!/usr/bin/env python3
"""Module cycles per crate, from the paths each file names (comments and `mod tests` left
out): `crate::a::b`, `super::x` (any number of `super::`), and a parent's `child::x` or
`self::child::x`. A path ends at the longest prefix that is a module, so a child naming an
item of its parent (`super::ITEM`, `crate::parent::ITEM`) depends on the parent, and a
parent naming its child's items depends on the child: a parent/child cycle is a cycle.
The crate root (lib.rs, main.rs) is the crate's facade and is left out, and so is a
re-export (`pub use`). Prints each crate's strongly connected components of
more than one module; with --allow CRATE:a,b,c, a component equal to that set is allowed.
Exits 1 when any other cycle exists. Run from the repository root (.ci/layout.sh does)."""
import re, pathlib, sys
def modname(root,f):
    rel=f.relative_to(root).with_suffix('')
    parts=list(rel.parts)
    if parts[-1] in ('lib','mod','main'): parts=parts[:-1]
    return '::'.join(parts) or 'lib'
allowed = {}
args = sys.argv[1:]
while args:
    a = args.pop(0)
    if a == '--allow':
        name, mods_ = args.pop(0).split(':')
        allowed[name] = sorted(mods_.split(','))
bad = False
for crate in sorted(pathlib.Path('crates').glob('*/src')):
    files=list(crate.rglob('*.rs'))
    mods={modname(crate,f):f for f in files}
    g={m:set() for m in mods}
    for m,f in mods.items():
        s=f.read_text()
        s='\n'.join(l for l in s.split('\n') if not l.lstrip().startswith('//'))
        s=re.sub(r'#\[cfg\(test\)\]\s*mod tests \{.*','',s,flags=re.S)
        # A re-export (`pub use child::Item;`) is the module's facade, not a use of it.
        s=re.sub(r'^\s*pub(\([a-z]+\))? use [^;]*;','',s,flags=re.M)
        def longest(base, parts):
            """The longest module base::parts[..i], down to base itself."""
            for i in range(len(parts), -1, -1):
                cand = '::'.join(([base] if base else []) + parts[:i])
                if cand in mods:
                    return cand
            return None
        def edge(cand):
            if cand and cand != m and cand != 'lib' and m != 'lib':
                g[m].add(cand)
        for ref in re.findall(r'\bcrate::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)', s):
            edge(longest('', ref.split('::')))
        for sup, ref in re.findall(r'\b((?:super::)+)([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)?', s):
            up = sup.count('super::')
            # mod.rs and foo.rs alike: `super` is the module's parent.
            parts = m.split('::') if m != 'lib' else []
            base = '::'.join(parts[:len(parts) - up]) if up <= len(parts) else ''
            cand = longest(base, ref.split('::') if ref else [])
            edge(cand if cand else 'lib')
        if m != 'lib':
            # A path that starts with a child's name (`child::x`, `self::child::x`).
            for ref in re.findall(r'(?<![\w:])(?:self::)?([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)::', s):
                first = ref.split('::')[0]
                if m + '::' + first in mods:
                    edge(longest(m, ref.split('::')))
    # SCCs (tarjan)
    idx={};low={};st=[];on=set();out=[];c=[0]
    def sc(v):
        idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
        for w in g[v]:
            if w not in idx: sc(w);low[v]=min(low[v],low[w])
            elif w in on: low[v]=min(low[v],idx[w])
        if low[v]==idx[v]:
            comp=[]
            while True:
                w=st.pop();on.discard(w);comp.append(w)
                if w==v:break
            if len(comp)>1: out.append(sorted(comp))
    sys.setrecursionlimit(10000)
    for v in g:
        if v not in idx: sc(v)
    for comp in out:
        if allowed.get(crate.parent.name) == comp:
            print(f"{crate.parent.name}: allowed cycle {comp}")
            continue
        bad = True
        print(f"{crate.parent.name}: module cycle {comp}")
        for v in comp:
            print("   ", v, "->", sorted(w for w in g[v] if w in comp))
sys.exit(1 if bad else 0)
