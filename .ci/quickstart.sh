#!/usr/bin/env bash
# The quick start as a new user runs it (docs/quickstart.md): build the wheel and the sdist, install
# the wheel (not editable) into a clean virtual environment, create the page's project from its
# own code blocks, run its commands and tests, serve it with runserver, and call it over HTTP with tokens
# from the packaged dev issuer. Run alone: `bash .ci/quickstart.sh` (PYTHON defaults to .venv/bin/python,
# which needs the "release" extra: pip install -e '.[dev]').
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
page="$root/docs/quickstart.md"
python=${PYTHON:-$root/.venv/bin/python}
case "$python" in /*) ;; *) python="$PWD/$python" ;; esac  # the script changes folders
started=$(date +%s)
step() { printf -- '--- quickstart: %s (%ss)\n' "$*" "$(($(date +%s) - started))"; }

work=$(mktemp -d)
server_pid=
index_pid=
cleanup() {
  step "clean up"
  for pid in "$server_pid" "$index_pid"; do
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
# Nothing of this checkout or of the caller's Django setup may leak into the user's project.
unset PYTHONPATH DJANGO_SETTINGS_MODULE DATABASE_URL REDIS_URL VIRTUAL_ENV
while IFS= read -r name; do unset "$name"; done < <(env | grep -o '^COBEE_[A-Z0-9_]*' || true)

# The page is the one copy of the project: its shell blocks and its files (fenced blocks with a title).
page_tool="$root/tests/testapp/quickstart_page.py"
block() { "$python" "$page_tool" block "$page" "$1"; }

step "build the wheel and the sdist"
"$python" -m build --outdir "$work/dist" "$root" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/*.whl)
sdist=$(ls "$work"/dist/*.tar.gz)
echo "$(basename "$wheel") $(basename "$sdist")"

step "what the artifacts hold"
"$python" - "$wheel" "$sdist" <<'PY'
import email, re, sys, tarfile, zipfile

wheel, sdist = sys.argv[1:]
names = zipfile.ZipFile(wheel).namelist()
with tarfile.open(sdist) as tar:
    members = [m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name]
    metadata = email.message_from_bytes(tar.extractfile(next(m for m in tar.getmembers() if m.name.endswith("/PKG-INFO") and m.name.count("/") == 1)).read())
    license_text = tar.extractfile(next(m for m in tar.getmembers() if m.name.endswith("/LICENSE"))).read().decode()
problems = []
if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
    problems.append("the wheel has no LICENSE")
if "LICENSE" not in members or "Copyright (c) 2026 the cobee_django authors" not in license_text:
    problems.append("the sdist has no LICENSE (MIT, the cobee_django authors)")
# The sdist holds the package only: no test that could not run without the repository.
stray = sorted(m for m in members if m.split("/")[0] in {"tests", "testproject", "bench", "examples", "docs"})
if stray:
    problems.append(f"the sdist holds files that only run in the repository: {stray[:5]}")
for needed in ("cobee_django/devissuer/templates/cobee_devissuer/authorize.html", "cobee_django/devissuer/migrations/0001_initial.py", "cobee_django/py.typed"):
    if needed not in names:
        problems.append(f"the wheel lacks {needed}")
urls = metadata.get_all("Project-URL") or []
if not {"Homepage", "Documentation", "Source"} <= {u.split(",")[0] for u in urls}:
    problems.append(f"Project-URLs missing: {urls}")
if metadata["License-Expression"] != "MIT":
    problems.append(f"License-Expression is {metadata['License-Expression']!r}")
relative = [link for link in re.findall(r"\]\(([^)]+)\)", metadata.get_payload()) if not link.startswith(("https://", "#"))]
if relative:
    problems.append(f"the long description has links that break on the package index: {relative}")
print("\n".join(problems) or f"wheel: {len(names)} files; sdist: {len(members)} files; {len(urls)} Project-URLs")
sys.exit(1 if problems else 0)
PY
# A wheel built from the sdist (what pip does with it) holds the same files as the one built from the tree.
"$python" -m pip wheel -q --no-deps --wheel-dir "$work/from-sdist" "$sdist" >"$work/sdist-wheel.log" 2>&1 || { cat "$work/sdist-wheel.log"; exit 1; }
diff <("$python" -m zipfile -l "$wheel" | awk '{print $1}' | grep -v RECORD | sort) \
     <("$python" -m zipfile -l "$work"/from-sdist/*.whl | awk '{print $1}' | grep -v RECORD | sort)

step "release checks: twine check --strict, the version from one place"
"$python" -m twine check --strict "$wheel" "$sdist"
version=$("$python" -c 'import sys; sys.path.insert(0, sys.argv[1]); import cobee_django; print(cobee_django.__version__)' "$root")
case "$(basename "$wheel")" in "cobee_django-$version-py3-none-any.whl") ;; *) echo "the wheel is not version $version"; exit 1;; esac
grep -q "^## $version ([0-9]\{4\}-[0-9]\{2\}-[0-9]\{2\})" "$root/docs/changelog.md" || { echo "docs/changelog.md has no dated $version entry"; exit 1; }
# Every extra a user may ask for (the project's own development extras left out).
extras=$("$python" - "$root/pyproject.toml" <<'PY'
import sys, tomllib
optional = tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]
print(",".join(sorted(set(optional) - {"demo", "test", "lint", "docs", "release", "dev", "mutation"})))
PY
)
echo "version $version; extras: $extras"

step "a package index (PEP 503) on 127.0.0.1 serving dist/"
# The wheel reaches the clean environment as a release would: from an index, by name, with its extras.
mkdir -p "$work/index/simple/cobee-django" "$work/index/files"
cp "$wheel" "$sdist" "$work/index/files/"
{
  echo '<!DOCTYPE html><html><body>'
  for file in "$wheel" "$sdist"; do
    name=$(basename "$file")
    echo "<a href=\"../../files/$name#sha256=$(sha256sum "$file" | cut -d' ' -f1)\">$name</a>"
  done
  echo '</body></html>'
} >"$work/index/simple/cobee-django/index.html"
echo '<!DOCTYPE html><html><body><a href="cobee-django/">cobee-django</a></body></html>' >"$work/index/simple/index.html"
index_port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$python" -m http.server --bind 127.0.0.1 --directory "$work/index" "$index_port" >"$work/index.log" 2>&1 &
index_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$index_port/simple/cobee-django/" >/dev/null && break; sleep 0.1; done

step "a clean virtual environment: cobee-django[$extras]==$version from that index, pytest and pytest-django"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check --report "$work/report.json" \
  --extra-index-url "http://127.0.0.1:$index_port/simple/" \
  "cobee-django[$extras]==$version" pytest pytest-django >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; exit 1; }
kill "$index_pid" 2>/dev/null || true
# The package came from the local index (not from another index that might know the name), and the
# version the code reports is the one its metadata carries.
"$work/venv/bin/python" - "$work/report.json" "http://127.0.0.1:$index_port/" "$version" <<'PY'
import importlib.metadata, json, sys

report, index, version = sys.argv[1:]
ours = [item for item in json.load(open(report))["install"] if item["metadata"]["name"] == "cobee-django"]
assert len(ours) == 1 and ours[0]["download_info"]["url"].startswith(index), ours
assert ours[0]["download_info"]["url"].endswith(".whl"), ours[0]["download_info"]["url"]
import cobee_django

assert cobee_django.__version__ == importlib.metadata.version("cobee-django") == version
print(f"cobee-django {version} from {ours[0]['download_info']['url']}")
PY
export PATH="$work/venv/bin:$PATH" VIRTUAL_ENV="$work/venv"
mkdir "$work/project" && cd "$work/project"
python -c 'import cobee_django, sys; assert cobee_django.__file__.startswith(sys.prefix), cobee_django.__file__'

step "create the project as the page does"
block create >"$work/create.sh" && cat "$work/create.sh"
bash -euo pipefail "$work/create.sh"
# Every file the page shows, written from the page's own code blocks.
python "$page_tool" files "$page" .
# The page serves on runserver's default 127.0.0.1:8000; here a free port stands in for it.
port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -i "s#127\.0\.0\.1:8000#127.0.0.1:$port#" mysite/settings.py

step "migrations, checks and the project's tests"
block test >"$work/test.sh" && cat "$work/test.sh"
bash -euo pipefail "$work/test.sh" >"$work/test.out" 2>&1 || { cat "$work/test.out"; exit 1; }
grep -v "^  Applying" "$work/test.out"
grep -q "System check identified no issues" "$work/test.out"
grep -Eq " [0-9]+ passed" "$work/test.out" && ! grep -Eq " [0-9]+ (failed|error)" "$work/test.out"

step "runserver on 127.0.0.1:$port, and the page's calls"
python manage.py runserver "127.0.0.1:$port" --noreload >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 60); do
  curl -sf "http://127.0.0.1:$port/.well-known/openid-configuration" >/dev/null && break
  sleep 0.5
done
{ block curl; block client; } | sed "s#127\.0\.0\.1:8000#127.0.0.1:$port#g" >"$work/calls.sh"
bash -euo pipefail "$work/calls.sh" >"$work/calls.out" 2>&1 || { cat "$work/calls.out" "$work/server.log"; exit 1; }
cat "$work/calls.out"; echo
grep -q '"name":"Sales"' "$work/calls.out"
grep -q "HTTP/1.1 403" "$work/calls.out"
grep -q "HTTP/1.1 401" "$work/calls.out"
grep -q '"access_token"' "$work/calls.out"

step "the token round trip over HTTP, checked"
python - "http://127.0.0.1:$port" <<'PY'
import base64, json, subprocess, sys, urllib.error, urllib.request, uuid

base = sys.argv[1]


def manage(*args):
    return subprocess.run([sys.executable, "manage.py", *args], check=True, capture_output=True, text=True).stdout


def call(method, path, token=None, body=None, basic=None, form=None):
    headers = {}
    data = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(basic.encode()).decode()
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    if form is not None:
        data, headers["Content-Type"] = form.encode(), "application/x-www-form-urlencoded"
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


create = "from cobee_django.models import Company; print(Company.objects.create(name={!r}).pk)"
mine, theirs = (manage("shell", "-v0", "-c", create.format(name)).strip() for name in ("Initech", "Umbrella"))
client = json.loads(manage("create_dev_client", "--company", mine, "--json").strip().splitlines()[-1])
status, token = call("POST", "/oauth/token", basic=f"{client['client_id']}:{client['client_secret']}", form="grant_type=client_credentials")
assert status == 200, (status, token)
token = token["access_token"]
status, department = call("POST", f"/api/companies/{mine}/departments/", token, {"name": "Research", "company": theirs})
assert status == 201 and department["company"] == mine, (status, department)
status, employee = call("POST", f"/api/companies/{mine}/employees/", token, {"email": "ann@initech.example", "department": department["id"]})
assert status == 201, (status, employee)
status, listed = call("GET", f"/api/companies/{mine}/employees/", token)
assert status == 200 and [e["email"] for e in listed] == ["ann@initech.example"], (status, listed)
assert call("GET", f"/api/companies/{theirs}/employees/", token)[0] == 403
assert call("GET", f"/api/companies/{mine}/employees/")[0] == 401
reader = manage("dev_token", "--company", mine, "--scope", "read:employees").strip()
assert call("GET", f"/api/companies/{mine}/departments/", reader)[0] == 200
assert call("POST", f"/api/companies/{mine}/departments/", reader, {"name": "Nope"})[0] == 403
assert call("GET", f"/api/companies/{uuid.uuid4()}/departments/", reader)[0] == 403
print("token from /oauth/token: 201 create, 200 list of its own company; another company 403; no token 401; read-only 403 on write")
PY

step "done in $(($(date +%s) - started))s"
