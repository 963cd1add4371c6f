# Installed by the tenantry.msp.director role: asks the Director to run playbooks/audit.yml as a job
# (POST /api/v1/audit/runs with the admin token). Started by tenantry-director-audit.timer.
#   python3 tenantry-director-audit.py TOKEN_FILE CA_FILE URL
import json
import ssl
import sys
import urllib.request

token_file, ca_file, url = sys.argv[1:4]
with open(token_file) as handle:
    token = handle.read().strip()
request = urllib.request.Request(
    url.rstrip("/") + "/api/v1/audit/runs",
    data=b"{}",
    method="POST",
    headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
)
with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=ca_file), timeout=30) as answer:
    run = json.load(answer)
print("drift audit started as run " + str(run["id"]) + " (" + str(run["state"]) + ")")
