"""``xregistry admission review FILE``: the webhook's answer offline, with verify's exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from tests.admission.conftest import patched, policy_source
from tests.admission.reviews import images_of, pod_spec, review, workload
from tests.cli.test_catalog_cli import run
from tests.harness.registry import RunningRegistry


def test_review_prints_the_answer_and_exits_as_verify(
    fresh_registry: RunningRegistry,
    populated: dict[str, str],
    release_key: ec.EllipticCurvePrivateKey,
    tmp_path: Path,
) -> None:
    host = fresh_registry.host
    db = tmp_path / "catalog.db"
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_source(host, release_key))
    signed, unsigned = f"{host}/shop/app:signed", f"{host}/shop/app:unsigned"
    mixed = workload("Deployment", "web", "shop", pod_spec([signed, unsigned]))
    mixed_file = tmp_path / "mixed.json"
    mixed_file.write_text(json.dumps(review(mixed)))

    # Nothing indexed: resolved and fetched live within the timeout, as the webhook would.
    denied = run("admission", "review", str(mixed_file), "--policy", str(policy), db=db)
    assert denied.returncode == 1, denied.stderr
    answer = json.loads(denied.stdout)
    response = answer["response"]
    assert answer["kind"] == "AdmissionReview"
    assert response["allowed"] is False
    assert f"{unsigned} (containers[c1])" in response["status"]["message"]

    only_signed = workload("CronJob", "job", "shop", pod_spec([signed], restart="OnFailure"))
    signed_file = tmp_path / "signed.json"
    signed_file.write_text(json.dumps(review(only_signed)))
    allowed = run(
        "admission", "review", str(signed_file), "--policy", str(policy), "--mutate", db=db
    )
    assert allowed.returncode == 0, allowed.stderr
    after = patched(only_signed, json.loads(allowed.stdout)["response"])
    assert images_of(after) == [f"{signed}@{populated['signed']}"]

    # Offline, a tag the catalog has not seen is denied, naming what is missing.
    stranger = workload("Pod", "p", "shop", pod_spec([f"{host}/shop/app:nope"]))
    stranger_file = tmp_path / "stranger.json"
    stranger_file.write_text(json.dumps(review(stranger)))
    offline = run(
        "admission", "review", str(stranger_file), "--policy", str(policy), "--offline", db=db
    )
    assert offline.returncode == 1
    assert "the catalog has no tag" in json.loads(offline.stdout)["response"]["status"]["message"]


def test_review_errors_are_one_line_with_exit_2(tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    bad = tmp_path / "bad.json"
    bad.write_text('{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}')
    done = run("admission", "review", str(bad), db=db)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "xregistry: error: request must be an object\n"
    remote = run("admission", "review", str(bad), server="127.0.0.1:1", db=db)
    assert remote.returncode == 2
    assert remote.stderr.startswith("xregistry: error: admission review judges on the local")
    labels = run("admission", "review", str(bad), "--namespace-label", "novalue", db=db)
    assert labels.returncode == 2
    assert labels.stderr == ("xregistry: error: --namespace-label 'novalue': expected KEY=VALUE\n")
