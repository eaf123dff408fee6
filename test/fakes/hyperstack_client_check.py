"""Runs the official Hyperstack Python client (PyPI `hyperstack`) against the fake: create, get, list,
hibernate, restore from hibernation and delete one VM, and read the pricebook. The client's pydantic models validate every response, so a fake that drifts from the
published shapes fails here. Usage: python3 hyperstack_client_check.py <base url> <api key>; prints JSON."""
import json
import sys
import time

import hyperstack
from hyperstack.models.create_instances_payload import CreateInstancesPayload

base_url, api_key = sys.argv[1], sys.argv[2]
config = hyperstack.Configuration(host=base_url)
config.api_key["apiKey"] = api_key
with hyperstack.ApiClient(config) as client:
    vms = hyperstack.VirtualMachineApi(client)
    created = vms.create_vms(
        CreateInstancesPayload(
            name="client-check",
            environment_name="CANADA-1",
            flavor_name="n3-A100x1",
            image_name="Ubuntu Server 22.04 LTS",
            key_name="ops",
            count=1,
            assign_floating_ip=True,
            labels=["client-check"],
        )
    )
    vm_id = created.instances[0].id
    got = vms.get_vm(vm_id)
    listed = vms.list_vms(search="client-check")

    def wait_for(status):
        for _ in range(100):
            if vms.get_vm(vm_id).instance.status == status:
                return status
            time.sleep(0.05)
        return vms.get_vm(vm_id).instance.status

    active = wait_for("ACTIVE")
    hibernate = vms.hibernate_vm(vm_id)
    hibernated = wait_for("HIBERNATED")
    restore = vms.restore_vm_from_hibernation(vm_id)
    restored = wait_for("ACTIVE")
    deleted = vms.delete_vm(vm_id)
    pricebook = hyperstack.PricebookApi(client).get_pricebook()
    try:
        vms.get_vm(999999)
        missing = "no error"
    except hyperstack.ApiException as err:
        missing = err.status
    print(
        json.dumps(
            {
                "created": created.status,
                "id": vm_id,
                "name": got.instance.name,
                "status": got.instance.status,
                "listed": [vm.id for vm in listed.instances],
                "hibernation": [active, hibernate.status, hibernated, restore.status, restored],
                "deleted": deleted.status,
                "missing": missing,
                "flavor_gpu": [got.instance.flavor.gpu, got.instance.flavor.gpu_count],
                "pricebook": {p.name: p.value for p in pricebook},
            }
        )
    )
