"""Drives the local docstore with the official Azure Cosmos DB Python SDK.

The SDK is the judge of Cosmos compatibility. Run against a docstore served
on a loopback address (see run.sh):

    COSMOS_ENDPOINT=http://127.0.0.1:8081 COSMOS_KEY=<base64> python3 sdk_conformance.py

Expects the containers patients/tests (partition key /patientId) and
patients/patients (/id). Every run uses fresh ids, so it can be repeated
against the same database. Exits non-zero on any failure; the last line is
"N passed, M failed".
"""

import base64
import os
import sys
import traceback
import uuid

from azure.core import MatchConditions
from azure.cosmos import CosmosClient
from azure.cosmos import exceptions

ENDPOINT = os.environ.get("COSMOS_ENDPOINT", "")
KEY = os.environ.get("COSMOS_KEY", "")

results = {"passed": 0, "failed": 0}


def check(name, fn):
    try:
        fn()
    except Exception:  # noqa: BLE001 - every failure is reported, none stops the run
        results["failed"] += 1
        print(f"FAIL {name}")
        traceback.print_exc(limit=3)
    else:
        results["passed"] += 1
        print(f"ok   {name}")


def expect_status(status, fn):
    try:
        fn()
    except exceptions.CosmosHttpResponseError as e:
        assert e.status_code == status, f"expected {status}, got {e.status_code}: {e.message}"
        return e
    raise AssertionError(f"expected HTTP {status}, the call succeeded")


def main():
    if not ENDPOINT.startswith("http://127.") and not ENDPOINT.startswith("http://localhost"):
        print("COSMOS_ENDPOINT must be a loopback http:// URL, e.g. http://127.0.0.1:8081")
        return 2
    if not KEY:
        print("COSMOS_KEY is not set")
        return 2

    client = CosmosClient(ENDPOINT, credential=KEY)
    database = client.get_database_client("patients")
    tests = database.get_container_client("tests")
    patients = database.get_container_client("patients")
    run = uuid.uuid4().hex[:8]
    patient_id = f"patient-{run}"
    state = {}

    def account_advertises_own_endpoint():
        account = client.get_database_account()
        locations = [loc["databaseAccountEndpoint"] for loc in account.WritableLocations]
        assert locations == [ENDPOINT.rstrip("/") + "/"], locations
        assert account.ConsistencyPolicy["defaultConsistencyLevel"] == "Session"

    def container_properties():
        props = tests.read()
        assert props["partitionKey"]["paths"] == ["/patientId"], props["partitionKey"]
        assert props["id"] == "tests"
        assert database.read()["id"] == "patients"

    def unknown_container_is_404():
        expect_status(404, lambda: database.get_container_client("nope").read())
        expect_status(404, lambda: client.get_database_client("nope").read())

    def create_and_read():
        doc = {"id": f"t-{run}", "patientId": patient_id, "performer": "lab", "n": 1}
        created = tests.create_item(doc)
        for prop in ("_rid", "_self", "_etag", "_ts", "_attachments"):
            assert prop in created, prop
        assert created["performer"] == "lab"
        read = tests.read_item(doc["id"], partition_key=patient_id)
        assert read == created, (read, created)
        state["doc"] = created

    def conflicting_create_is_409():
        doc = {"id": f"t-{run}", "patientId": patient_id}
        try:
            tests.create_item(doc)
        except exceptions.CosmosResourceExistsError as e:
            assert e.status_code == 409
            return
        raise AssertionError("second create succeeded")

    def replace_with_etag():
        doc = dict(state["doc"])
        doc["performer"] = "lab-2"
        replaced = tests.replace_item(doc["id"], doc, etag=state["doc"]["_etag"],
                                      match_condition=MatchConditions.IfNotModified)
        assert replaced["performer"] == "lab-2"
        assert replaced["_etag"] != state["doc"]["_etag"]
        assert replaced["_rid"] == state["doc"]["_rid"]
        state["stale_etag"] = state["doc"]["_etag"]
        state["doc"] = replaced

    def stale_etag_replace_is_412():
        doc = dict(state["doc"])
        doc["performer"] = "lab-3"
        try:
            tests.replace_item(doc["id"], doc, etag=state["stale_etag"],
                               match_condition=MatchConditions.IfNotModified)
        except exceptions.CosmosAccessConditionFailedError as e:
            assert e.status_code == 412
        else:
            raise AssertionError("stale replace succeeded")
        assert tests.read_item(doc["id"], partition_key=patient_id)["performer"] == "lab-2"

    def missing_document_is_404():
        try:
            tests.read_item(f"missing-{run}", partition_key=patient_id)
        except exceptions.CosmosResourceNotFoundError as e:
            assert e.status_code == 404
        else:
            raise AssertionError("read of a missing document succeeded")
        expect_status(404, lambda: tests.replace_item(f"missing-{run}", {"id": f"missing-{run}", "patientId": patient_id}))

    def partition_key_mismatch_is_400():
        # create_item derives the header from the document; the lower-level
        # call lets the header disagree with the document.
        e = expect_status(400, lambda: client.client_connection.CreateItem(
            tests.container_link, {"id": f"x-{run}", "patientId": "a"}, options={"partitionKey": "b"}))
        assert "PartitionKey extracted from document doesn't match" in e.message, e.message

    def ids_with_spaces_and_unicode():
        # The SDK signs the decoded id and sends it percent-encoded.
        doc_id = f"a b ü+é {run}"
        created = tests.create_item({"id": doc_id, "patientId": patient_id})
        assert tests.read_item(doc_id, partition_key=patient_id)["_rid"] == created["_rid"]
        tests.delete_item(doc_id, partition_key=patient_id)

    def upsert_and_delete():
        doc = {"id": f"u-{run}", "patientId": patient_id, "v": 1}
        first = tests.upsert_item(doc)
        doc["v"] = 2
        second = tests.upsert_item(doc)
        assert second["v"] == 2 and second["_etag"] != first["_etag"]
        tests.delete_item(doc["id"], partition_key=patient_id)
        expect_status(404, lambda: tests.read_item(doc["id"], partition_key=patient_id))
        expect_status(404, lambda: tests.delete_item(doc["id"], partition_key=patient_id))

    def paged_parameterised_query():
        pid = f"paged-{run}"
        for i in range(10):
            tests.create_item({"id": f"p{i:02d}-{run}", "patientId": pid, "n": i, "kind": "x"})
        tests.create_item({"id": f"other-{run}", "patientId": pid, "n": "5", "kind": "x"})
        query = "SELECT * FROM c WHERE c.patientId = @pid AND c.n >= @min ORDER BY c.n DESC"
        params = [{"name": "@pid", "value": pid}, {"name": "@min", "value": 2}]
        pager = tests.query_items(query, parameters=params, partition_key=pid, max_item_count=3).by_page()
        pages = [list(page) for page in pager]
        assert len(pages) >= 3, [len(p) for p in pages]
        assert all(len(p) <= 3 for p in pages)
        values = [doc["n"] for page in pages for doc in page]
        # The string "5" is not a number: Cosmos type rules exclude it.
        assert values == list(range(9, 1, -1)), values

    def continuation_token_resumes():
        pid = f"paged-{run}"
        query = "SELECT * FROM c WHERE c.patientId = @pid ORDER BY c.id"
        params = [{"name": "@pid", "value": pid}]
        pager = tests.query_items(query, parameters=params, partition_key=pid, max_item_count=4).by_page()
        first = list(next(pager))
        token = pager.continuation_token
        assert token, "no continuation token after the first page"
        rest_pager = tests.query_items(query, parameters=params, partition_key=pid,
                                       max_item_count=4).by_page(token)
        rest = [doc["id"] for page in rest_pager for doc in page]
        ids = [doc["id"] for doc in first] + rest
        assert ids == sorted(ids) and len(ids) == len(set(ids)) == 11, ids

    def cross_partition_query():
        marker = f"xp-{run}"
        for i in range(5):
            tests.create_item({"id": f"xp{i}-{run}", "patientId": f"xp-{i}-{run}", "marker": marker, "n": i})
        found = list(tests.query_items(
            "SELECT * FROM c WHERE c.marker = @m ORDER BY c.n",
            parameters=[{"name": "@m", "value": marker}],
            enable_cross_partition_query=True, max_item_count=2))
        assert [d["n"] for d in found] == [0, 1, 2, 3, 4], found

    def injection_like_values_are_literal():
        evil = f"x' OR '1'='1\"); DROP TABLE docstore_documents; -- {run}"
        doc = patients.create_item({"id": f"evil-{run}", "name": evil})
        assert doc["name"] == evil
        found = list(patients.query_items("SELECT * FROM c WHERE c.name = @n",
                                          parameters=[{"name": "@n", "value": evil}],
                                          enable_cross_partition_query=True))
        assert [d["id"] for d in found] == [f"evil-{run}"], found
        none = list(patients.query_items("SELECT * FROM c WHERE c.name = @n",
                                         parameters=[{"name": "@n", "value": "x' OR '1'='1"}],
                                         enable_cross_partition_query=True))
        assert none == [], none
        starts = list(patients.query_items("SELECT * FROM c WHERE STARTSWITH(c.name, @p) AND c.id = @id",
                                           parameters=[{"name": "@p", "value": "x' OR"},
                                                       {"name": "@id", "value": f"evil-{run}"}],
                                           enable_cross_partition_query=True))
        assert len(starts) == 1, starts

    def unsupported_query_is_400():
        e = expect_status(400, lambda: list(tests.query_items("SELECT TOP 1 * FROM c", partition_key=patient_id)))
        assert "Unsupported query" in e.message, e.message

    def query_plan_is_understood():
        # The SDK asks for a plan only when a server refuses a cross-partition
        # query; ask directly to check the plan's shape is one it parses.
        from azure.cosmos._execution_context.query_execution_info import _PartitionedQueryExecutionInfo
        plan = client.client_connection._GetQueryPlanThroughGateway(
            "SELECT * FROM c WHERE c.n > @n ORDER BY c.n", tests.container_link)
        info = _PartitionedQueryExecutionInfo(plan)
        ranges = info.get_query_ranges()
        assert len(ranges) == 1 and ranges[0]["min"] == "" and ranges[0]["max"] == "FF", ranges
        assert not info.has_order_by() and not info.has_aggregates()

    def read_all_items():
        pid = f"paged-{run}"
        items = list(tests.read_all_items(max_item_count=5))
        assert len([d for d in items if d.get("patientId") == pid]) == 11

    def wrong_key_is_401():
        wrong = base64.b64encode(b"not the store key, 64 bytes long............................").decode()
        try:
            bad = CosmosClient(ENDPOINT, credential=wrong)
            bad.get_database_client("patients").read()
        except exceptions.CosmosHttpResponseError as e:
            assert e.status_code == 401, e.status_code
            assert KEY not in str(e)
            return
        raise AssertionError("a client with the wrong key was served")

    def transactional_batch_commits_together():
        pk = f"batch-{run}"
        head = tests.create_item({"id": f"head-{run}", "patientId": pk, "n": 0})
        results = tests.execute_item_batch([
            ("create", ({"id": f"r1-{run}", "patientId": pk},)),
            ("replace", (head["id"], {"id": head["id"], "patientId": pk, "n": 1}),
             {"if_match_etag": head["_etag"]}),
            ("upsert", ({"id": f"u-{run}", "patientId": pk},)),
            ("read", (f"r1-{run}",)),
        ], partition_key=pk)
        assert [r["statusCode"] for r in results] == [201, 200, 201, 200], results
        assert results[1]["resourceBody"]["n"] == 1
        assert tests.read_item(f"u-{run}", partition_key=pk)["patientId"] == pk
        state["batch_head"] = results[1]["resourceBody"]

    def failed_batch_writes_nothing():
        pk = f"batch-{run}"
        head = state["batch_head"]
        try:
            tests.execute_item_batch([
                ("create", ({"id": f"r2-{run}", "patientId": pk},)),
                ("replace", (head["id"], {"id": head["id"], "patientId": pk, "n": 2}),
                 {"if_match_etag": '"stale"'}),
            ], partition_key=pk)
        except exceptions.CosmosBatchOperationError as e:
            assert (e.error_index, e.status_code) == (1, 412), (e.error_index, e.status_code)
            assert [r["statusCode"] for r in e.operation_responses] == [424, 412]
        else:
            raise AssertionError("a batch with a stale etag succeeded")
        expect_status(404, lambda: tests.read_item(f"r2-{run}", partition_key=pk))
        assert tests.read_item(head["id"], partition_key=pk)["n"] == 1

    for name, fn in [
        ("account advertises its own http endpoint", account_advertises_own_endpoint),
        ("container properties", container_properties),
        ("unknown database/container is 404", unknown_container_is_404),
        ("create and read", create_and_read),
        ("conflicting create is 409", conflicting_create_is_409),
        ("replace with etag", replace_with_etag),
        ("stale-etag replace is 412", stale_etag_replace_is_412),
        ("missing document is 404", missing_document_is_404),
        ("partition key mismatch is 400", partition_key_mismatch_is_400),
        ("ids with spaces and unicode", ids_with_spaces_and_unicode),
        ("upsert and delete", upsert_and_delete),
        ("parameterised query paged over 3+ pages", paged_parameterised_query),
        ("continuation token resumes a query", continuation_token_resumes),
        ("cross-partition query", cross_partition_query),
        ("injection-like values are literal", injection_like_values_are_literal),
        ("unsupported query is 400", unsupported_query_is_400),
        ("query plan is understood", query_plan_is_understood),
        ("read all items (feed)", read_all_items),
        ("transactional batch commits together", transactional_batch_commits_together),
        ("failed transactional batch writes nothing", failed_batch_writes_nothing),
        ("wrong key is 401", wrong_key_is_401),
    ]:
        check(name, fn)

    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
