#!/usr/bin/env python3
"""Module cycles per crate, from the `crate::X` and `super::X` paths each file names
(comments and `mod tests` left out). Prints each crate's strongly connected components of
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
        for ref in re.findall(r'crate::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)',s):
            parts=ref.split('::')
            # longest prefix that is a module
            for i in range(len(parts),0,-1):
                cand='::'.join(parts[:i])
                if cand in mods:
                    if cand!=m and not m.startswith(cand+'::') : g[m].add(cand)
                    break
        for ref in re.findall(r'\bsuper::([a-z_][a-z0-9_]*)',s):
            par='::'.join(m.split('::')[:-1]) if '::' in m else 'lib'
            cand=(par+'::'+ref) if par!='lib' else ref
            if cand in mods and cand!=m: g[m].add(cand)
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
