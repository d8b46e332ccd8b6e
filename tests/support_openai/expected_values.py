#!/usr/bin/env python3
"""Recompute the fixture tables of tests/adapter_openai_{chat,responses}.rs from the raw
payloads, independently of the Rust adapters. Run from anywhere; prints one Case row per file."""
import json,re,os,sys
BASE=os.path.join(os.path.dirname(os.path.abspath(__file__)), '../fixtures/provider-streams')
def payloads(path):
    t=open(path,encoding='utf-8').read()
    if path.endswith('.chunks.txt'):
        return [(None,l) for l in t.splitlines() if l.strip()]
    res=[];ev=None;data=[]
    for line in re.split(r'\r\n|\n|\r', t):
        if line=='':
            if data: res.append((ev,'\n'.join(data)))
            ev=None;data=[];continue
        if line.startswith(':'): continue
        k,_,v=line.partition(':'); v=v[1:] if v.startswith(' ') else v
        if k=='event': ev=v
        elif k=='data': data.append(v)
    if data: res.append((ev,'\n'.join(data)))
    return res
def chat(path):
    usage=None; finish=None; calls={}; order=[]; text=0; err=None; rsn=0
    for ev,d in payloads(path):
        if d.strip()=='[DONE]': break
        j=json.loads(d)
        if j.get('error') or ev=='error':
            e=j.get('error') or {}
            err=e; break
        u=j.get('usage') or (j.get('x_groq') or {}).get('usage')
        if u: usage=u
        ch=j.get('choices') or []
        if not ch: continue
        c=ch[0]; dl=c.get('delta') or {}
        cont=dl.get('content')
        rr=dl.get('reasoning_content') or dl.get('reasoning') or ''.join((x.get('text') or '') for x in (dl.get('reasoning_details') or []) if x.get('type')=='reasoning.text')
        rsn+=len(rr)
        if isinstance(cont,list):
            for p in cont:
                if p.get('type')=='thinking':
                    th=p.get('thinking')
                    rsn+= len(th) if isinstance(th,str) else sum(len(x.get('text') or '') for x in th)
        if isinstance(cont,str): text+=len(cont)
        elif isinstance(cont,list):
            for p in cont:
                if p.get('type')=='text': text+=len(p.get('text') or '')
        for tc in dl.get('tool_calls') or []:
            i=tc['index']
            if i not in calls: calls[i]={'name':tc['function']['name'],'args':''}; order.append(i)
            calls[i]['args']+=(tc.get('function') or {}).get('arguments') or ''
        if c.get('finish_reason') and finish is None: finish=c['finish_reason']
    u=usage or {}
    p=u.get('prompt_tokens') or 0; comp=u.get('completion_tokens') or 0; tot=u.get('total_tokens')
    pd=u.get('prompt_tokens_details') or {}; cd=u.get('completion_tokens_details') or {}
    cr=pd.get('cached_tokens') or u.get('prompt_cache_hit_tokens') or 0
    cw=pd.get('cache_write_tokens') or 0
    r=cd.get('reasoning_tokens') or 0
    out = comp if (r>0 and tot==p+comp+r) else comp-r
    fmap={'stop':'Stop','length':'Length','tool_calls':'ToolCalls','content_filter':'ContentFilter'}
    tools=[(calls[i]['name'], json.loads(calls[i]['args']) if calls[i]['args'].strip() else {}) for i in order]
    return dict(usage=(p-cr-cw,out,r,cr,cw), finish=None if err else fmap.get(finish,'Other'), raw=None if err else finish, tools=tools, text=text, err=err, rsn=rsn)
def resp(path):
    usage=None; finish=None; tools=[]; text=0; err=None; rsn=0
    for ev,d in payloads(path):
        if d.strip()=='[DONE]': continue
        j=json.loads(d); t=j['type']
        if t=='error': err=j.get('error'); break
        if t=='response.failed': err=j['response'].get('error'); break
        if t=='response.output_text.delta': text+=len(j['delta'])
        if t in ('response.reasoning_summary_text.delta','response.reasoning_text.delta'): rsn+=len(j['delta'])
        if t=='response.output_item.done' and j['item']['type']=='function_call':
            a=j['item']['arguments']; tools.append((j['item']['name'], json.loads(a) if a.strip() else {}))
        if t in('response.completed','response.incomplete'):
            r=j['response']; u=r['usage']
            inc=(r.get('incomplete_details') or {}).get('reason')
            hasfc=any(o['type']=='function_call' for o in r.get('output') or [])
            if t=='response.incomplete': finish={'max_output_tokens':'Length','content_filter':'ContentFilter'}.get(inc,'Other'); raw=inc
            else: finish='ToolCalls' if hasfc else 'Stop'; raw=r['status']
            cr=u['input_tokens_details']['cached_tokens']; rs=u['output_tokens_details']['reasoning_tokens']
            usage=(u['input_tokens']-cr,u['output_tokens']-rs,rs,cr,0)
    return dict(usage=usage or (0,0,0,0,0), finish=None if err else finish, raw=None if err else raw, tools=tools, text=text, err=err, rsn=rsn)
rows=[]
for d in ['openai-chat','openai-responses','openai-compatible']:
    for f in sorted(os.listdir(f'{BASE}/{d}')):
        p=f'{BASE}/{d}/{f}'
        isresp = d=='openai-responses' or 'responses' in f
        r=resp(p) if isresp else chat(p)
        api='Responses' if isresp else 'Chat'
        u=r['usage']
        tools=', '.join('("%s", r#"%s"#)'%(n,json.dumps(a,separators=(',',':'),ensure_ascii=False)) for n,a in r['tools'])
        if r['err'] is not None:
            e=r['err']; code=str(e.get('code') or e.get('type'))
            cls={'insufficient_quota':'RateLimited, false','tool_use_failed':'InvalidRequest, false','400':'InvalidRequest, false'}[code]
            outcome='Outcome::Error(ErrorClass::%s)'%cls
        else:
            outcome='Outcome::Finish(FinishReason::%s, %s)'%(r['finish'], '"%s"'%r['raw'])
        print('    Case { file: "%s/%s", api: %s, usage: [%d, %d, %d, %d, %d], outcome: %s, tools: &[%s], text_chars: %d, reasoning_chars: %d },'%(d,f,api,*u,outcome,tools,r['text'],r['rsn']))
        if r['err'] is not None: print('     // err', json.dumps(r['err'])[:150], file=sys.stderr)
