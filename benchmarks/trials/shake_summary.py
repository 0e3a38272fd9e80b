import json,sys,statistics as st
rows=[json.loads(l) for l in open(sys.argv[1])]
arms=[k for k in rows[0] if k not in ('index','ks')]
for r in sorted(rows,key=lambda r:r['index']):
  print(r['index'],r['ks'],' '.join(f"{a}:{r[a]['ratio']:.2f}/{r[a]['mnc']:.2f}" for a in arms))
for a in arms:
  rr=[r[a]['ratio'] for r in rows]
  print(a,'median %.2f'%st.median(rr),'mean %.2f'%st.mean(rr),'r<=2 %d/%d'%(sum(x<=2 for x in rr),len(rr)),'r<=3 %d'%sum(x<=3 for x in rr),'mnc %.3f'%st.mean(r[a]['mnc'] for r in rows),'s %.1f'%st.mean(r[a]['s'] for r in rows))
