"""The self-contained web page served at ``/`` (no external scripts, styles or fonts)."""

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>ferkit: facial expressions</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#222}
header{background:#2b3a55;color:#fff;padding:12px 20px}header h1{margin:0;font-size:20px}
main{max-width:1100px;margin:auto;padding:16px}
#drop{border:2px dashed #8a94a6;border-radius:8px;padding:22px;text-align:center;background:#fff;cursor:pointer}
#drop.over{background:#e8eefc;border-color:#3a66d6}
#status{margin:10px 0;min-height:1.3em}#status.error{color:#b00020;font-weight:600}
#view{display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start}
#stage{position:relative;display:inline-block;max-width:640px}
#stage img,#stage video{max-width:640px;display:block}
#overlay{position:absolute;left:0;top:0;pointer-events:none}
#faces{flex:1;min-width:260px}
.face{background:#fff;border-radius:6px;padding:8px 10px;margin-bottom:8px;box-shadow:0 1px 2px #0002}
.face-label{font-weight:600}
.bar{display:flex;align-items:center;font-size:12px;margin:2px 0}.bar span{width:64px}
.bar .track{flex:1;background:#e6e8ec;height:9px;border-radius:4px;margin:0 6px}
.bar .fill{height:9px;border-radius:4px}
#timeline{background:#fff;border-radius:6px;margin-top:14px;display:none;width:100%}
#legend{font-size:12px;margin-top:4px}#legend i{display:inline-block;width:10px;height:10px;margin:0 3px 0 10px}
</style></head><body>
<header><h1>ferkit &middot; facial expressions</h1></header>
<main>
<div id="drop" tabindex="0">Drop a photo or a short video here, or <label style="text-decoration:underline">
choose a file<input id="file" type="file" accept="image/*,video/*" hidden></label></div>
<div id="status" role="status"></div>
<div id="view"><div id="stage"></div><div id="faces"></div></div>
<canvas id="timeline" height="220"></canvas><div id="legend"></div>
</main>
<script>
"use strict";
const COLORS={angry:"#d62728",disgust:"#8c564b",fear:"#9467bd",happy:"#2ca02c",sad:"#1f77b4",surprise:"#ff7f0e",
  neutral:"#7f7f7f",contempt:"#bcbd22"};
const color=c=>COLORS[c]||"#17becf";
const params=new URLSearchParams(location.search);
const token=params.get("token")||"";
const $=id=>document.getElementById(id);
let current=null;
function setStatus(msg,err){const s=$("status");s.textContent=msg;s.className=err?"error":"";}
function esc(t){const d=document.createElement("div");d.textContent=String(t);return d.innerHTML;}
async function upload(file){
  if(!file)return;
  setStatus("Analysing "+file.name+" ...");
  $("faces").innerHTML="";$("timeline").style.display="none";$("legend").innerHTML="";
  const url=URL.createObjectURL(file);
  const stage=$("stage");stage.innerHTML="";
  const isVideo=file.type.startsWith("video/");
  const media=document.createElement(isVideo?"video":"img");
  if(isVideo){media.controls=true;media.muted=true;}
  media.src=url;stage.appendChild(media);
  const ov=document.createElement("canvas");ov.id="overlay";stage.appendChild(ov);
  const fd=new FormData();fd.append("file",file,file.name);
  let res,body;
  try{
    res=await fetch("v1/analyze",{method:"POST",body:fd,headers:token?{Authorization:"Bearer "+token}:{}});
    body=await res.json();
  }catch(e){setStatus("Request failed: "+e,true);return;}
  if(!res.ok){const m=typeof body.detail==="string"?body.detail:JSON.stringify(body.detail);
    setStatus("Error "+res.status+": "+m,true);return;}
  current={data:body,media:media,overlay:ov};
  const n=body.rows.length;
  setStatus(body.filename+": "+(body.kind==="video"?n+" faces in "+body.status.frames+" analysed frames":
    (n?n+" face"+(n>1?"s":""):"no face found")));
  if(body.kind==="video"){timeline(body);media.addEventListener("timeupdate",draw);media.addEventListener("seeked",draw);}
  const ready=()=>{draw();};
  if(isVideo)media.addEventListener("loadeddata",ready);else if(media.complete)ready();else media.onload=ready;
  listFaces(body.kind==="video"?[]:body.rows,body.classes);
}
function rowsNow(){
  const d=current.data;if(d.kind!=="video")return d.rows;
  const t=current.media.currentTime;let best=null,bd=1e9;
  for(const r of d.rows){const dd=Math.abs(r.time_s-t);if(dd<bd){bd=dd;best=r.time_s;}}
  return bd<0.5?d.rows.filter(r=>r.time_s===best):[];
}
function draw(){
  if(!current)return;
  const {media,overlay,data}=current;
  const w=media.clientWidth,h=media.clientHeight;if(!w)return;
  overlay.width=w;overlay.height=h;
  const k=w/data.width,ctx=overlay.getContext("2d");ctx.clearRect(0,0,w,h);
  const rows=rowsNow();
  if(data.kind==="video")listFaces(rows,data.classes);
  for(const r of rows){
    ctx.strokeStyle=color(r.emotion);ctx.lineWidth=3;ctx.strokeRect(r.x*k,r.y*k,r.w*k,r.h*k);
    const label="#"+r.face_id+" "+r.emotion+" "+Math.round(100*r[r.emotion])+"%";
    ctx.font="bold 14px system-ui,sans-serif";const tw=ctx.measureText(label).width;
    const y=Math.max(0,r.y*k-20);ctx.fillStyle=color(r.emotion);ctx.fillRect(r.x*k,y,tw+8,20);
    ctx.fillStyle="#fff";ctx.fillText(label,r.x*k+4,y+15);
  }
}
function listFaces(rows,classes){
  const box=$("faces");
  box.innerHTML=rows.map(r=>{
    const bars=classes.map(c=>'<div class="bar"><span>'+esc(c)+
      '</span><div class="track"><div class="fill" style="width:'+
      (100*r[c]).toFixed(1)+'%;background:'+color(c)+'"></div></div>'+(100*r[c]).toFixed(0)+'%</div>').join("");
    return '<div class="face"><div class="face-label" data-emotion="'+esc(r.emotion)+'">Face '+r.face_id+": "+
      esc(r.emotion)+" ("+Math.round(100*r[r.emotion])+"%), "+esc(r.sentiment)+"</div>"+bars+"</div>";
  }).join("");
}
function timeline(d){
  const cv=$("timeline");cv.style.display="block";cv.width=cv.clientWidth||900;
  const ctx=cv.getContext("2d"),W=cv.width,H=cv.height,L=40,B=24;
  const times=[...new Set(d.rows.map(r=>r.time_s))].sort((a,b)=>a-b);
  const T=Math.max(d.duration_s||0,times.length?times[times.length-1]:1)||1;
  ctx.clearRect(0,0,W,H);ctx.strokeStyle="#999";ctx.beginPath();ctx.moveTo(L,5);ctx.lineTo(L,H-B);ctx.lineTo(W-5,H-B);ctx.stroke();
  ctx.fillStyle="#555";ctx.font="11px system-ui";
  for(let i=0;i<=4;i++){const v=i/4,y=(H-B)-v*(H-B-5);ctx.fillText(v.toFixed(2),4,y+4);}
  for(let i=0;i<=5;i++){const t=T*i/5,x=L+(W-L-5)*t/T;ctx.fillText(t.toFixed(1)+" s",x-10,H-6);}
  const byT=new Map();for(const r of d.rows){if(!byT.has(r.time_s))byT.set(r.time_s,[]);byT.get(r.time_s).push(r);}
  for(const c of d.classes){
    ctx.strokeStyle=color(c);ctx.lineWidth=2;ctx.beginPath();let first=true;
    for(const t of times){const rs=byT.get(t);const v=rs.reduce((a,r)=>a+r[c],0)/rs.length;
      const x=L+(W-L-5)*t/T,y=(H-B)-v*(H-B-5);if(first){ctx.moveTo(x,y);first=false;}else ctx.lineTo(x,y);}
    ctx.stroke();
  }
  $("legend").innerHTML="Mean probability per analysed frame:"+
    d.classes.map(c=>'<i style="background:'+color(c)+'"></i>'+esc(c)).join("");
}
const drop=$("drop");
$("file").addEventListener("change",e=>upload(e.target.files[0]));
drop.addEventListener("dragover",e=>{e.preventDefault();drop.classList.add("over");});
drop.addEventListener("dragleave",()=>drop.classList.remove("over"));
drop.addEventListener("drop",e=>{e.preventDefault();drop.classList.remove("over");upload(e.dataTransfer.files[0]);});
window.addEventListener("resize",draw);
</script></body></html>
"""
