#!/usr/bin/env python3
"""Checks the deployment files against the binary they would run.

Docker images cannot be built here, so this runs what can: for the Dockerfile, both compose
files and both Kubernetes manifests it reads the environment, ports, probes, volumes and
stop grace they give orgsync, checks that they agree with each other and with the default
config, then runs the binary with that environment (paths and ports moved to a scratch
directory and free ports, the database to the local PostgreSQL): `orgsync check-config`
must pass, every probe must answer 200 on the port it names, the container health check
must pass, `/metrics` must not be on the public port, and SIGTERM must stop the process
with exit 0 within the grace the file gives. Replicas are started side by side.

    python3 deploy/check.py target/debug/orgsync

PostgreSQL variants need ORGSYNC_TEST_DATABASE_URL (as .ci/run sets it); without it they
are skipped with a note, and with it an unreachable server fails the check.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CONFIG = ROOT / "config" / "orgsync.toml"
DATA_DIR = "/var/lib/orgsync"
IMAGE_CONFIG = "/etc/orgsync/orgsync.toml"
PROBE_PATHS = {"/healthz", "/readyz"}
DOCKER_STOP_TIMEOUT = 10  # docker stop's default


class Failure(Exception):
    """A deployment file disagrees with the binary or with itself."""


def require(condition, message):
    if not condition:
        raise Failure(message)


def shutdown_grace_seconds():
    return tomllib.loads(CONFIG.read_text())["worker"]["shutdown_grace_seconds"]


def example_env():
    """The values of deploy/env.example, which Compose would interpolate."""
    values = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def interpolate(text, values):
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} against `values`."""

    def one(match):
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        value = values.get(name, "")
        if op == ":?":
            require(value, f"${{{name}}} is required but env.example does not set it")
        return value or (arg if op == ":-" else "")

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, text)


def port_of(listen):
    return int(listen.rsplit(":", 1)[1])


class Variant:
    """One way of running orgsync that a deployment file describes."""

    def __init__(self, name, env, replicas, stop_grace, probes, health_command=None):
        self.name = name
        self.env = env
        self.replicas = replicas
        self.stop_grace = stop_grace
        self.probes = probes  # [(path, container port)]
        self.health_command = health_command

    def check_static(self):
        require("ORGSYNC_LISTEN" in self.env, f"{self.name}: ORGSYNC_LISTEN is not set")
        require("ORGSYNC_ADMIN_LISTEN" in self.env, f"{self.name}: no admin listener")
        admin = port_of(self.env["ORGSYNC_ADMIN_LISTEN"])
        for path, port in self.probes:
            require(path in PROBE_PATHS, f"{self.name}: probe path {path} is not served")
            require(port == admin, f"{self.name}: probe {path} on {port}, admin port is {admin}")
        grace = shutdown_grace_seconds()
        require(
            self.stop_grace > grace,
            f"{self.name}: stop grace {self.stop_grace}s is not above shutdown_grace_seconds {grace}s",
        )


def dockerfile_variant():
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    final_stage = text.split("\nFROM ")[-1]
    env = {}
    for line in final_stage.splitlines():
        if line.startswith("ENV "):
            env.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    health = re.search(r'HEALTHCHECK .*CMD \[(.*)\]', final_stage)
    require(health, "Dockerfile: no HEALTHCHECK CMD")
    command = [part.strip().strip('"') for part in health.group(1).split(",")]
    require(command[0] == "/usr/local/bin/orgsync", "Dockerfile: health check runs another binary")
    require(re.search(r"^USER 65532:65532$", final_stage, re.M), "Dockerfile: not the nonroot user")
    require(env.get("ORGSYNC_CONFIG") == IMAGE_CONFIG, "Dockerfile: ORGSYNC_CONFIG moved")
    return Variant("Dockerfile", env, 1, DOCKER_STOP_TIMEOUT, [], health_command=command[1:])


def docker_run_variant():
    """The Dockerfile as its header comment runs it: the secrets given with `-e`."""
    variant = dockerfile_variant()
    secrets = {key: value for key, value in example_env().items() if key != "POSTGRES_PASSWORD"}
    variant.env.update(secrets)
    variant.name = "Dockerfile (docker run -e …)"
    return variant


def compose_variant(file_name):
    path = DEPLOY / file_name
    values = example_env()
    document = yaml.safe_load(interpolate(path.read_text(), values))
    service = document["services"]["orgsync"]
    env = dict(dockerfile_variant().env)
    env.update({key: str(value) for key, value in service["environment"].items()})
    grace = int(service["stop_grace_period"].rstrip("s"))
    replicas = service.get("deploy", {}).get("replicas", 1)
    require(service.get("read_only"), f"{file_name}: the root filesystem is writable")
    require("/tmp" in service.get("tmpfs", []), f"{file_name}: no tmpfs on /tmp")
    require(service.get("cap_drop") == ["ALL"], f"{file_name}: capabilities not dropped")
    published = [str(port) for port in service["ports"]]
    admin = port_of(env["ORGSYNC_ADMIN_LISTEN"])
    for mapping in published:
        if mapping.endswith(f":{admin}"):
            require(mapping.startswith("127.0.0.1:"), f"{file_name}: admin port published beyond localhost")
    if env["ORGSYNC_DATABASE_URL"].startswith("sqlite://"):
        mounts = [volume.split(":")[1] for volume in service.get("volumes", [])]
        require(DATA_DIR in mounts, f"{file_name}: the SQLite directory is not a volume")
    # Compose runs the image's HEALTHCHECK.
    health = dockerfile_variant().health_command
    return Variant(file_name, env, replicas, grace, [], health_command=health)


def kubernetes_variant(file_name):
    documents = list(yaml.safe_load_all((DEPLOY / "kubernetes" / file_name).read_text()))
    secret = yaml.safe_load((DEPLOY / "kubernetes" / "secret.example.yaml").read_text())
    workload = next(d for d in documents if d["kind"] in ("Deployment", "StatefulSet"))
    pod = workload["spec"]["template"]
    labels = pod["metadata"]["labels"]
    require(
        workload["spec"]["selector"]["matchLabels"].items() <= labels.items(),
        f"{file_name}: the selector does not match the pod's labels",
    )
    container = pod["spec"]["containers"][0]
    named_ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    for service in (d for d in documents if d["kind"] == "Service"):
        require(service["spec"]["selector"].items() <= labels.items(), f"{file_name}: Service selects nothing")
        for port in service["spec"]["ports"]:
            require(port["targetPort"] in named_ports, f"{file_name}: Service targets an unknown port")
    env = {}
    for variable in container["env"]:
        if "value" in variable:
            env[variable["name"]] = str(variable["value"])
            continue
        reference = variable["valueFrom"]["secretKeyRef"]
        require(reference["name"] == secret["metadata"]["name"], f"{file_name}: unknown Secret")
        require(
            reference["key"] in secret["stringData"],
            f"{file_name}: {variable['name']} reads key {reference['key']}, absent from secret.example.yaml",
        )
        env[variable["name"]] = secret["stringData"][reference["key"]]
    probes = []
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = container[kind]["httpGet"]
        port = probe["port"]
        probes.append((probe["path"], named_ports.get(port, port)))
    security = container["securityContext"]
    require(security.get("readOnlyRootFilesystem"), f"{file_name}: the root filesystem is writable")
    require(security.get("allowPrivilegeEscalation") is False, f"{file_name}: privilege escalation allowed")
    require(pod["spec"]["securityContext"].get("runAsUser") == 65532, f"{file_name}: not the image's user")
    mounts = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
    require("/tmp" in mounts, f"{file_name}: /tmp is not writable")
    if env["ORGSYNC_DATABASE_URL"].startswith("sqlite://"):
        require(workload["spec"]["replicas"] == 1, f"{file_name}: SQLite has one writer")
        require(DATA_DIR in mounts, f"{file_name}: the SQLite directory is not a volume")
    env.setdefault("ORGSYNC_CONFIG", IMAGE_CONFIG)
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    return Variant(file_name, env, workload["spec"]["replicas"], grace, probes)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def wait_until(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise Failure(f"timed out after {seconds}s waiting for {what}")


def local_env(variant, scratch, database_url):
    """The variant's environment, with paths and the database moved to what exists here."""
    env = {key: value.replace(DATA_DIR, str(scratch)) for key, value in variant.env.items()}
    env["ORGSYNC_CONFIG"] = str(CONFIG) if env["ORGSYNC_CONFIG"] == IMAGE_CONFIG else env["ORGSYNC_CONFIG"]
    if not env["ORGSYNC_DATABASE_URL"].startswith("sqlite://"):
        env["ORGSYNC_DATABASE_URL"] = database_url
    # No network here: without Scalekit credentials the workers stay paused.
    for key in ("SCALEKIT_ENVIRONMENT_URL", "SCALEKIT_CLIENT_ID", "SCALEKIT_CLIENT_SECRET"):
        env.pop(key, None)
    env["PATH"] = os.environ.get("PATH", "")
    return env


def run_variant(binary, variant, database_url):
    print(f"{variant.name}: ", end="", flush=True)
    variant.check_static()
    check = subprocess.run(
        [binary, "check-config"], env={**variant.env, "PATH": "", "ORGSYNC_CONFIG": str(CONFIG)},
        capture_output=True, text=True,
    )
    require(check.returncode == 0, f"{variant.name}: check-config failed:\n{check.stdout}{check.stderr}")
    require("WARNING" not in check.stdout, f"{variant.name}: check-config warns:\n{check.stdout}")
    with tempfile.TemporaryDirectory() as scratch:
        processes = []
        try:
            for replica in range(variant.replicas):
                env = local_env(variant, scratch, database_url)
                public, admin = free_port(), free_port()
                env["ORGSYNC_LISTEN"] = f"0.0.0.0:{public}"
                env["ORGSYNC_ADMIN_LISTEN"] = f"0.0.0.0:{admin}"
                log = open(Path(scratch) / f"replica-{replica}.log", "w")
                process = subprocess.Popen([binary, "serve"], env=env, stdout=log, stderr=log)
                processes.append((process, env, public, admin))
            for process, env, public, admin in processes:
                base = f"http://127.0.0.1:{admin}"
                wait_until(lambda: http_status(f"{base}/healthz") == 200, 60, f"{variant.name} to start")
                for path in {path for path, _ in variant.probes} or PROBE_PATHS:
                    status = http_status(f"{base}{path}")
                    require(status == 200, f"{variant.name}: probe {path} answered {status}")
                require(
                    http_status(f"http://127.0.0.1:{public}/metrics") == 404,
                    f"{variant.name}: /metrics is served on the public port",
                )
                if variant.health_command:
                    health = subprocess.run([binary, *variant.health_command], env=env, capture_output=True)
                    require(health.returncode == 0, f"{variant.name}: the health check failed: {health.stderr}")
            for process, *_ in processes:
                process.send_signal(signal.SIGTERM)
            for process, *_ in processes:
                code = process.wait(timeout=variant.stop_grace)
                require(code == 0, f"{variant.name}: exit {code} after SIGTERM")
        except Failure:
            for log in sorted(Path(scratch).glob("*.log")):
                print(f"\n--- {log.name}\n{log.read_text()[-3000:]}", file=sys.stderr)
            raise
        finally:
            for process, *_ in processes:
                if process.poll() is None:
                    process.kill()
    print(f"ok ({variant.replicas} × serve, probes, SIGTERM → 0)")


def psql(url, statement):
    quiet = {**os.environ, "PGOPTIONS": "--client-min-messages=warning"}
    subprocess.run(["psql", url, "-qc", statement], check=True, env=quiet)


def fresh_database(base_url):
    """A new empty database on the server of `base_url`; returns its URL."""
    name = f"orgsync_deploy_check_{os.getpid()}"
    psql(base_url, f"DROP DATABASE IF EXISTS {name}")
    psql(base_url, f"CREATE DATABASE {name}")
    return name, base_url.rsplit("/", 1)[0] + "/" + name


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: deploy/check.py PATH/TO/orgsync")
    binary = str(Path(sys.argv[1]).resolve())
    sqlite = [docker_run_variant(), compose_variant("compose.yaml"), kubernetes_variant("sqlite.yaml")]
    postgres = [compose_variant("compose.postgres.yaml"), kubernetes_variant("postgres.yaml")]
    for variant in sqlite:
        run_variant(binary, variant, None)
    base_url = os.environ.get("ORGSYNC_TEST_DATABASE_URL")
    if not base_url:
        for variant in postgres:
            variant.check_static()
        print("PostgreSQL variants: static checks only (set ORGSYNC_TEST_DATABASE_URL to run them)")
        return
    require(shutil.which("psql"), "psql is needed to create the check's database")
    for variant in postgres:
        name, url = fresh_database(base_url)
        try:
            run_variant(binary, variant, url)
        finally:
            psql(base_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    try:
        main()
    except Failure as failure:
        sys.exit(f"\ndeploy check failed: {failure}")
