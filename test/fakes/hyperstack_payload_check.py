"""Validates create-VM bodies (a JSON list on stdin) against the official Hyperstack client's request model
(`CreateInstancesPayload`, strict pydantic): the bodies zeropool's driver sent must be ones the real API's
published schema accepts. Prints the number validated; a body that does not fit raises."""
import json
import sys

from hyperstack.models.create_instances_payload import CreateInstancesPayload

bodies = json.load(sys.stdin)
for body in bodies:
    unknown = set(body) - set(CreateInstancesPayload.model_fields)
    if unknown:
        raise SystemExit(f"fields the API does not define: {sorted(unknown)}")
    CreateInstancesPayload.model_validate(body, strict=True)
print(json.dumps({"validated": len(bodies)}))
