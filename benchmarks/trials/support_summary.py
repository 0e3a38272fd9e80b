import json, sys, statistics as st, subprocess
rows=[json.loads(l) for l in open(sys.argv[1] if len(sys.argv)>1 else '/tmp/sup/ab.jsonl')]
# defaults for paper protocol from previous session
base={}
d=json.load(open('/work/main/benchmarks/results/kernel-stability/results.json'))
for r in d: base[r['index']]={'psnr':r['base']['psnr'],'mnc':r['base']['mnc_true']}
out=subprocess.run(['git','-C','/work/main','show','089ef85:benchmarks/trials/medoid_pipeline.jsonl'],capture_output=True,text=True).stdout
for l in out.splitlines():
  r=json.loads(l)
  if r.get('cascade'): base[r['index']]=r['cascade']
by={}
for r in rows: by.setdefault((r['cond'],r['index']),{})[r['arm']]=r
for cond in ('short','paper'):
  dp=[];dm=[];sup=[];dr=[];ss=[]; ts=[]
  for (c,i),v in sorted(by.items()):
    if c!=cond or 'support' not in v: continue
    s=v['support']; b=v.get('default') or base.get(i)
    if not b: continue
    dp.append(s['psnr']-b['psnr']); dm.append(s['mnc']-b['mnc'])
    if 'ratio' in b: dr.append((s['ratio'],b['ratio']))
    print(cond,i,'blur',round(s['blurry'],2),'def',round(b['psnr'],2),'sup',round(s['psnr'],2),'mnc',round(b['mnc'],3),round(s['mnc'],3),'ratio',round(b.get('ratio',0),2),round(s['ratio'],2),s['search_size'],round(b.get('s',0)),round(s['s']))
  if dp:
    print(cond,'n',len(dp),'dPSNR %.2f +- %.2f'%(st.mean(dp),st.stdev(dp)/len(dp)**.5 if len(dp)>1 else 0),'up',sum(x>0 for x in dp),'dMNC %.3f'%st.mean(dm))
    if dr:
      for j,name in ((1,'default'),(0,'support')):
        rr=[x[j] for x in dr]; print('  ',name,'median ratio %.2f'%st.median(rr),'r<=2 %d/%d'%(sum(x<=2 for x in rr),len(rr)),'r<=3 %d'%sum(x<=3 for x in rr))
