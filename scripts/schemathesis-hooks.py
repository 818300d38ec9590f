"""Real ids for scripts/schemathesis.

Run as `schemathesis-hooks.py setup` (with M365BACKUP_BASE, M365BACKUP_PASSWORD and
M365BACKUP_WORK set), it signs in to a fresh `serve --demo`, turns its simulator's throttling
off (a throttled sign-in is a documented 503, but here a 5xx must mean a bug), makes the resources the generated
requests need and prints their ids as JSON. Loaded by schemathesis (SCHEMATHESIS_HOOKS, with
M365BACKUP_SCHEMATHESIS_IDS naming that JSON), it puts those ids in every generated path, so that
the calls reach real logic instead of 404s: the operations that remove or stop something get a
resource of their own, so the others keep theirs. A path parameter that schemathesis made invalid
on purpose (a negative case) is left alone.

Valid bodies (positive cases) also get the state the document cannot describe, and nothing else:
the demo tenant's sign-in for organizations (its application, the simulator's endpoints, a
backup worker's password), distinct members of the demo's security group with their passwords
for backup accounts, a worker that signs in for a restore's userName, real sites, users, groups,
repository and proxy for jobs, a fresh folder for a new repository (a local one: the demo reaches
no object storage) and the repository's own path on PUT. Invalid bodies are sent as generated.
"""

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

DEMO_ORGANIZATION = "6f9b3da3-204d-4a4b-b466-55586e0233fc"
DEMO_GROUP = "6e570850-9ce9-40ed-b81d-41772dabcead"
# An id of nothing, for the kinds of resource the demo has none of.
NOTHING = "00000000-0000-4000-8000-000000000001"
# The demo tenant's application secret (crates/server/src/demo.rs; never returned by the API)
# and its backup workers, members of DEMO_GROUP, with the passwords `serve --demo` prints.
DEMO_APP_SECRET = "demo-app-secret"
# The secret of the simulator's control API (`/_sim/`), m365sim's default, which `serve --demo`
# keeps.
SIM_CONTROL_SECRET = "sim-control"
DEMO_ACCOUNTS = [
    ("account1@office365.onmicrosoft.com", "XXXXX"),
    ("account2@office365.onmicrosoft.com", "Pass-account2-365!"),
    ("account3@office365.onmicrosoft.com", "Pass-account3-365!"),
    ("account4@office365.onmicrosoft.com", "Pass-account4-365!"),
]


# --- setup: make the resources -------------------------------------------------------------


class Api:
    """A minimal client of the server under test (self-signed certificate)."""

    def __init__(self, base):
        self.base = base
        self.token = None
        self.tls = ssl.create_default_context()
        self.tls.check_hostname = False
        self.tls.verify_mode = ssl.CERT_NONE

    def call(self, method, path, body=None, form=None):
        headers = {}
        data = None
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, context=self.tls, timeout=300) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise SystemExit(f"{method} {path}: {error.code} {error.read().decode(errors='replace')}")
        return json.loads(raw) if raw else None

    def first_id(self, path):
        """The id of the first item of a list (a bare array or a page), or NOTHING."""
        answer = self.call("GET", path)
        items = answer["results"] if isinstance(answer, dict) else answer
        return items[0]["id"] if items else NOTHING


def wait_idle(api, job):
    for _ in range(600):
        if api.call("GET", f"/v5/Jobs/{job}")["lastStatus"] not in ("Running", "Queued"):
            return
        time.sleep(0.5)
    raise SystemExit(f"job {job} still running after 5 minutes")


def explore(api, kind):
    body = {"explore": {"type": kind}}
    return api.call("POST", f"/v5/Organizations/{DEMO_ORGANIZATION}/Action", body)["id"]


def unthrottled(authority):
    """Turns off the simulator's throttling (its run-time setting, `PUT /_sim/throttling`): a
    throttled sign-in is answered 503 by design, and in this run a 5xx must mean a bug."""
    request = urllib.request.Request(
        authority.rstrip("/") + "/_sim/throttling",
        data=json.dumps({"enabled": False}).encode(),
        method="PUT",
        headers={"Content-Type": "application/json", "X-Sim-Secret": SIM_CONTROL_SECRET},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        if json.loads(response.read()).get("enabled") is not False:
            raise SystemExit("the simulator's throttling is still on")


def setup():
    api = Api(os.environ["M365BACKUP_BASE"])
    password = os.environ["M365BACKUP_PASSWORD"]
    signed_in = api.call("POST", "/v5/Token", form={"grant_type": "password", "username": "admin", "password": password})
    api.token = signed_in["access_token"]
    org = f"/v5/Organizations/{DEMO_ORGANIZATION}"
    ids = {"token": api.token, "organizationId": DEMO_ORGANIZATION, "groupId": DEMO_GROUP}
    repositories = api.call("GET", "/v5/BackupRepositories")
    ids["repositoryId"] = repositories[0]["id"]
    ids["repositoryPath"] = {r["id"]: r.get("path") for r in repositories}
    ids["proxyId"] = api.first_id("/v5/Proxies")
    ids["userId"] = api.first_id(f"{org}/Users?limit=1")
    sites = api.call("GET", f"{org}/Sites?limit=1")["results"]
    ids["siteId"] = sites[0]["id"] if sites else NOTHING
    # Graph's id of that site (host,collection,web), for a copy's target; the API's is the
    # collection and web GUIDs end to end.
    host = urllib.parse.urlparse(sites[0]["url"]).hostname if sites else "nothing"
    ids["graphSiteId"] = f"{host},{ids['siteId'][:36]},{ids['siteId'][36:]}"
    ids["objectStorageId"] = api.first_id("/v5/ObjectStorageRepositories")
    # Directory objects a job's items may name, and the demo tenant's sign-in (its app, and the
    # simulator's endpoints as the demo organization has them).
    # Sites both sign-ins read: a PUT of the organization may switch it to the sign-in of a
    # backup worker, who administers every site but site4 (crates/server/src/demo.rs), and
    # the organization's sites are then the ones that worker sees.
    sites = api.call("GET", f"{org}/Sites?limit=1000")["results"]
    ids["sites"] = [{"id": s["id"], "url": s["url"]} for s in sites if not s["isPersonal"] and not s["url"].endswith("/sites/site4")][:5]
    users = api.call("GET", f"{org}/Users?limit=5")["results"]
    ids["users"] = [{"id": u["id"], "name": u["name"], "displayName": u["displayName"]} for u in users]
    groups = api.call("GET", f"{org}/Groups?limit=5")["results"]
    ids["groups"] = [{"id": g["id"], "name": g["name"], "displayName": g["displayName"]} for g in groups]
    settings = api.call("GET", org)["sharePointOnlineSettings"]
    ids["tenant"] = {
        "applicationId": settings["applicationId"],
        "applicationSecret": DEMO_APP_SECRET,
        "officeOrganizationName": settings["officeOrganizationName"],
        "authorityUrl": settings["authorityUrl"],
        "graphUrl": settings["graphUrl"],
    }
    unthrottled(settings["authorityUrl"])
    # A job run once: its session, log items, and restore points to explore.
    job = {"name": "Schemathesis", "backupType": "EntireOrganization", "schedulePolicy": {"type": "ManualOnly"}, "runNow": True}
    ids["jobId"] = api.call("POST", f"{org}/Jobs", job)["id"]
    wait_idle(api, ids["jobId"])
    ids["jobSessionId"] = api.first_id(f"/v5/Jobs/{ids['jobId']}/JobSessions")
    ids["logItemId"] = api.first_id(f"/v5/JobSessions/{ids['jobSessionId']}/LogItems")
    ids["licensedUserId"] = api.first_id("/v5/LicensedUsers")
    # Restore sessions: OneDrive and SharePoint, each browsed to a folder and a document.
    onedrive = explore(api, "veod")
    drive = api.first_id(f"/v5/RestoreSessions/{onedrive}/Organization/OneDrives")
    under = f"/v5/RestoreSessions/{onedrive}/Organization/OneDrives/{drive}"
    ids["onedrive"] = {
        "restoreSessionId": onedrive,
        "oneDriveId": drive,
        "folderId": api.first_id(f"{under}/Folders"),
        "documentId": api.first_id(f"{under}/Documents"),
        "eventId": api.first_id(f"/v5/RestoreSessions/{onedrive}/Events"),
    }
    sharepoint = explore(api, "vesp")
    site = api.first_id(f"/v5/RestoreSessions/{sharepoint}/Organization/Sites")
    under = f"/v5/RestoreSessions/{sharepoint}/Organization/Sites/{site}"
    library = api.first_id(f"{under}/Libraries")
    ids["sharepoint"] = {
        "restoreSessionId": sharepoint,
        "siteId": site,
        "libraryId": library,
        "parentId": library,
        "folderId": api.first_id(f"{under}/Folders?parentId={library}"),
        "documentId": api.first_id(f"{under}/Documents?parentId={library}"),
        "eventId": api.first_id(f"/v5/RestoreSessions/{sharepoint}/Events"),
    }
    # What the removing and stopping operations may take.
    spare = {"name": "Schemathesis spare", "backupType": "EntireOrganization", "schedulePolicy": {"type": "ManualOnly"}}
    repository = {"name": "Schemathesis spare", "path": os.path.join(os.environ["M365BACKUP_WORK"], "spare-repository")}
    spare_repository = api.call("POST", "/v5/BackupRepositories", repository)
    ids["repositoryPath"][spare_repository["id"]] = spare_repository.get("path")
    ids["spare"] = {
        "jobId": api.call("POST", f"{org}/Jobs", spare)["id"],
        "repositoryId": spare_repository["id"],
        "restoreSessionId": explore(api, "veod"),
        # The demo organization itself is not removed: a fresh id of nothing instead.
        "organizationId": NOTHING,
    }
    json.dump(ids, sys.stdout, indent=1)


if __name__ == "__main__":
    if sys.argv[1:] != ["setup"]:
        raise SystemExit("usage: schemathesis-hooks.py setup")
    setup()
    sys.exit(0)


# --- hooks: put the ids in the paths ------------------------------------------------------

import schemathesis  # noqa: E402  (only when loaded by schemathesis)
from schemathesis.core.parameters import ParameterLocation  # noqa: E402

IDS = json.load(open(os.environ["M365BACKUP_SCHEMATHESIS_IDS"]))


def ids_for(method, path):
    """The ids an operation's path parameters take."""
    ids = dict(IDS)
    if "/OneDrives" in path:
        ids.update(IDS["onedrive"])
    elif "/RestoreSessions/{restoreSessionId}/Organization/Sites" in path:
        ids.update(IDS["sharepoint"])
    elif "/RestoreSessions/{restoreSessionId}" in path:
        ids.update(IDS["onedrive"])
    if path.startswith("/v5/LicensedUsers/"):
        ids["userId"] = IDS["licensedUserId"]
    removes = method == "DELETE" and path.count("{") == 1 and path.endswith("Id}")
    stops = method == "POST" and path in ("/v5/RestoreSessions/{restoreSessionId}/Action", "/v5/BackupRepositories/{repositoryId}/Action")
    if removes or stops:
        ids.update(IDS["spare"])
    return ids


def real_account(options):
    """A restore's writing account: one that signs in to the demo tenant."""
    if isinstance(options.get("userName"), str):
        options["userName"], options["userPassword"] = DEMO_ACCOUNTS[0]


def real_items(items):
    """A job's items naming real sites, users and groups (the n-th of a kind the n-th real one)."""
    if not isinstance(items, list):
        return
    seen = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = str(item.get("type", "")).lower()
        field, real = {"site": ("site", IDS["sites"]), "user": ("user", IDS["users"]), "group": ("group", IDS["groups"])}.get(kind, (None, None))
        target = item.get(field) if field else None
        if not isinstance(target, dict) or not real:
            continue
        n = seen.get(kind, 0)
        seen[kind] = n + 1
        pick = real[n % len(real)]
        for key in ("id", "url", "name", "displayName"):
            if isinstance(target.get(key), str) and target[key].strip() and key in pick:
                target[key] = pick[key]


def real_job(body, method):
    """A job body naming the real repository and proxy, and real items. An edit that leaves
    the job's selected items as stored while its type may be SelectedItems gets one real
    item: whether that edit is valid depends on the items the job holds (state the document
    cannot describe)."""
    for field, real in (("repositoryId", IDS["repositoryId"]), ("proxyId", IDS["proxyId"])):
        if isinstance(body.get(field), str) and body[field].strip():
            body[field] = real
    whole = str(body.get("backupType")).lower() == "entireorganization"
    if method == "PUT" and not whole and not body.get("selectedItems"):
        body["selectedItems"] = [{"type": "Site", "site": {"id": IDS["sites"][0]["id"]}}]
    real_items(body.get("selectedItems"))
    real_items(body.get("excludedItems"))


def real_sign_in(body):
    """An organization's connection settings that sign in to the demo tenant."""
    for field in ("sharePointOnlineSettings", "exchangeOnlineSettings"):
        settings = body.get(field)
        if not isinstance(settings, dict):
            continue
        settings.update(IDS["tenant"])
        if settings.get("useApplicationOnlyAuth") is not True:
            settings["account"], settings["password"] = DEMO_ACCOUNTS[0]


def real_accounts(body):
    """Backup accounts: distinct members of the demo's group, with their passwords."""
    del body[len(DEMO_ACCOUNTS):]
    for entry, (login, password) in zip(body, DEMO_ACCOUNTS):
        if isinstance(entry, dict) and isinstance(entry.get("groupMember"), dict):
            entry["groupMember"].update({"groupId": DEMO_GROUP, "login": login})
            entry["password"] = password


def real_repository(body, method, ids):
    """A new repository in a fresh folder of the run, on the real proxy; an edit keeps the
    repository's path."""
    if isinstance(body.get("proxyId"), str):
        body["proxyId"] = IDS["proxyId"]
    if method == "POST" and isinstance(body.get("objectStorage"), dict):
        # The demo reaches no object storage: the same body with a local folder instead.
        body["objectStorage"] = None
        body["path"] = ""
    if method == "POST" and body.get("path") is None and body.get("objectStorage") is None:
        # schemathesis 4.32.5's coverage phase builds "all required properties" of the
        # objectStorage branch with the other branch's null: a folder makes it the valid body
        # it was meant to be.
        body["path"] = ""
    if method == "POST" and isinstance(body.get("path"), str):
        global FOLDERS
        FOLDERS += 1
        body["path"] = os.path.join(os.path.dirname(os.environ["M365BACKUP_SCHEMATHESIS_IDS"]), "repositories", str(FOLDERS))
    if method == "PUT" and isinstance(body.get("path"), str):
        body["path"] = IDS["repositoryPath"].get(ids["repositoryId"])


FOLDERS = 0


def real_targets(body, ids):
    """A restore action's copy target and listed items, as real ones of the organization."""
    options = body.get("copyTo")
    if isinstance(options, dict):
        options.pop("library", None)  # a library of the target by name: the default one
        for field, real in (("oneDrive", IDS["onedrive"]["oneDriveId"]), ("site", IDS["graphSiteId"])):
            target = options.get(field)
            if isinstance(target, str):
                options[field] = real
            elif isinstance(target, dict) and "id" in target:
                target["id"] = real
    for options in body.values():
        if not isinstance(options, dict):
            continue
        real_account(options)
        for field, real in (("folders", ids.get("folderId")), ("documents", ids.get("documentId"))):
            items = options.get(field)
            if isinstance(items, list) and items and isinstance(items[0], dict) and real:
                items[0]["id"] = real


def negative(case, location):
    return case.meta is not None and case.meta.is_negative_at(location)


@schemathesis.hook
def map_case(context, case):
    ids = ids_for(case.method.upper(), case.operation.path)
    if case.path_parameters and not negative(case, ParameterLocation.PATH):
        for name in case.path_parameters:
            if name in ids:
                case.path_parameters[name] = ids[name]
    path = case.operation.path
    method = case.method.upper()
    if case.body is not None and not negative(case, ParameterLocation.BODY):
        if isinstance(case.body, dict) and "/RestoreSessions/" in path:
            real_targets(case.body, ids)
        elif isinstance(case.body, dict) and path in ("/v5/Organizations/{organizationId}/Jobs", "/v5/Jobs/{jobId}"):
            real_job(case.body, method)
        elif path in ("/v5/Jobs/{jobId}/SelectedItems", "/v5/Jobs/{jobId}/ExcludedItems"):
            real_items(case.body)
        elif isinstance(case.body, dict) and path in ("/v5/Organizations", "/v5/Organizations/{organizationId}"):
            real_sign_in(case.body)
        elif isinstance(case.body, list) and path == "/v5/Organizations/{organizationId}/BackupAccounts":
            real_accounts(case.body)
        elif isinstance(case.body, dict) and path.startswith("/v5/BackupRepositories") and not path.endswith("/Action"):
            real_repository(case.body, method, ids)
    # A site's folders and documents are listed under a library or folder of it.
    if isinstance(case.query, dict) and "parentId" in case.query and "parentId" in ids:
        if not negative(case, ParameterLocation.QUERY):
            case.query["parentId"] = ids["parentId"]
    return case
