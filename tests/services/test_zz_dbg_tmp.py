from tests.services.test_dialect_gaps import *
def test_dbg(client):
    src = open('/tmp/flow.yaml').read()
    ns, fid = put_flow(client, src)
    ex = run(client, ns, fid)
    for l in logs(client, ex["id"]): print("LOG", l)
    for r in ex["task_runs"]: print("RUN", r["task_id"], r["state"], r["value"], r["outputs"])
