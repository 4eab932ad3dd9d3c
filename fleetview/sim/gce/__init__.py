"""A Compute Engine emulator that the real google-cloud-compute REST transport talks to.

Start it in-process (tests, the demo)::

    from fleetview.sim.gce import GceEmulator, EmulatedClock
    from google.cloud import compute_v1

    emu = GceEmulator().start()            # or: with GceEmulator() as emu: ...
    state = emu.state                      # seeding API, project "demo-project" by default
    state.create_image("app-1-0-0", family="app", labels={"version": "1.0.0"},
                       created=timedelta(days=30))      # back-dated
    state.create_image("app-1-1-0", family="app", labels={"version": "1.1.0"})
    state.create_instance_template("app-t1", "app-1-0-0")          # global template
    state.create_instance_template("app-t2", "app-1-1-0", region="us-central1")
    state.create_mig("web", "app-t1", zone="us-central1-a", target_size=4)
    state.create_mig("api", "app-t1", region="us-central1", target_size=6)  # 3 zones
    state.create_instance("bastion", "us-central1-b", "app-1-0-0")          # standalone
    state.delete_image("app-1-0-0")

    client = compute_v1.InstancesClient(**emu.client_kwargs())
    # == credentials=AnonymousCredentials(), client_options={"api_endpoint": emu.endpoint}
    pages = client.aggregated_list(project="demo-project")

    emu.clock.advance(60)                  # emulated seconds: rollouts progress
    emu.faults.zone_unreachable("us-central1-b")
    emu.faults.throttle(3)                 # next 3 calls: 403 rateLimitExceeded
    emu.faults.deny("compute.instanceGroupManagers.patch")   # 403 forbidden
    emu.stop()

Tests use the `gce_emulator` fixture from tests/sim/gce_fixtures.py (manual clock starting at
2026-01-15T12:00:00Z, project "demo-project"). From a shell:
`python -m fleetview.sim.gce --port 8089 [--seed] [--realtime --speed 10]` (port 0 picks one;
the first line printed names the endpoint). Larger estates: `seed.seed_example(state)` (a small
versioned estate with history), `seed.seed_fleet(state, 5000)` (MIGs of 100 over 3 zones).

Seeding (GceState; `project=` on each, default the state's project; `created=` takes an epoch,
a datetime or a timedelta ago): create_image (family, labels, deprecated), deprecate_image,
delete_image, create_instance_template (image name, "family/F" or link; region= for regional),
delete_instance_template, create_mig (zone= or region=, zones=, target_size, versions in the
API's shape, update_policy), create_instance (standalone), backdate_instance, backdate_group,
patch_group / resize_group / recreate_in_group (what the API calls do), add_zone, add_project.
Production shapes: `scheduling=` on create_instance_template / create_instance (e.g.
{"provisioningModel": "SPOT"} or {"preemptible": True}) and preempt(zone, name) (TERMINATED with
lastStopTimestamp, and a compute.instances.preempted system operation in the zone);
create_mig(stateful_disks=[device names], target_shape="EVEN"|"BALANCED"|"ANY"|
"ANY_SINGLE_ZONE") and set_per_instance_config(group, instance, [device names]); a preserved
boot disk ("persistent-disk-0") keeps its image when its instance is recreated;
faults.deny(method, project=P) denies a method in one project only.
Reads for tests: list_instances, mig(name), managed_instances(name), find_group(name).

Served methods (api.ROUTES): instances get/list/aggregatedList; disks get/list/aggregatedList;
images get/list/getFromFamily/deprecate/delete; instanceTemplates get/list/aggregatedList/insert
and regionInstanceTemplates get/list/insert (insert takes the API's body: properties with a boot
disk's initializeParams.sourceImage, which must exist; 409 alreadyExists for a taken name); instanceGroupManagers and regionInstanceGroupManagers
get/list/listManagedInstances/listPerInstanceConfigs/patch/recreateInstances/resize
(+ aggregatedList); zone operations list (with `filter`, e.g. on operationType); zone, region
and global operations get/wait. The Logging API on the same port (logging_api.py): POST
/v2/entries:list over the Admin Activity audit log (audit.py), as google-cloud-logging calls it
over REST (`Client(_use_grpc=False, client_options={"api_endpoint": emu.endpoint})`): a filter
of `field op value` terms joined by AND (= != > >= < <= and `:`; value lists `(a OR b)`),
orderBy timestamp asc/desc, pageSize up to 1000, 60 reads a minute a project (429 past it;
`emu.logging.reads_per_minute = None` lifts it, `emu.logging.refused` counts refusals).
Anything else is a 404.

Audit log (state.audit): every instance insert and delete (by a MIG, or a standalone VM's
seeding) and every MIG insert and patch writes its operation's first and last entries in the
real LogEntry shape (cloudaudit.googleapis.com%2Factivity, resource gce_instance or
gce_instance_group_manager, protoPayload AuditLog with methodName, resourceName, request).
Past rollouts: `audit.seed_rollouts(state, group, [(when, template), ...], spread=60)` rewrites
a group's history (created on the first template, each next one rolled out then, every member
replaced) and back-dates its live instances to the last rollout; backdate_* move insert entries.
`seed.seed_past(state, "new-project")`: a project whose 30 days exist only in its records (the
demo's never-watched GCP scope, if it gets one).

Behaviour worth knowing:
- selfLinks use https://www.googleapis.com/compute/v1/...; parse names from them, never call them.
- Creating or recreating a MIG instance takes `state.step_seconds` (30) emulated seconds,
  deleting one `state.delete_seconds` (10). A PROACTIVE patch replaces at most maxSurge
  instances by new-named ones (SUBSTITUTE: create, then delete the old: 40 s a batch) plus
  maxUnavailable recreated in place; OPPORTUNISTIC waits for recreateInstances.
  Seeded groups are born finished. Patches the API refuses (both limits 0, regional fixed
  limits below the zone count, RECREATE with surge, SUBSTITUTE on a stateful group, proactive
  redistribution with a target shape other than EVEN) are 400s and change nothing.
- Lists page in a stable order (scope, then name); a pageToken names the last item returned
  and the next page continues after it, so instances made or deleted between pages (a
  rollout) never make a listing skip or repeat the instances that exist throughout.
- Operations are RUNNING for `state.op_seconds` (1) emulated second, then DONE; `wait` on a
  manual clock finishes the operation at once (the rollout it started still needs time); in
  real-time mode it blocks up to 2 s.
- aggregatedList: an unreachable zone gets an UNREACHABLE warning and is listed in
  `unreachables` (google-cloud-compute 1.57 cannot send returnPartialSuccess; only an explicit
  returnPartialSuccess=false makes the call fail). Zonal calls into it get 503, which the
  client retries by default: pass retry= to fail fast.
- Errors are Google's error JSON: 404 notFound (also for unknown projects), 409 resourceInUse
  (recreating an instance that is mid-action), 400 invalid, 403 rateLimitExceeded (throttle),
  403 forbidden (deny). `filter` supports =, !=, eq, ne, :* joined by AND; others are 400.
- A mutating call whose requestId was seen before returns the first call's operation.
- `state.calls` counts calls per API method id, e.g. "compute.instances.aggregatedList".
- Instance JSON is cached per instance: the first listing of 10,000 instances builds it
  (about a second), later pages splice it; warm up before timing.
"""

from fleetview.sim.gce.clock import EmulatedClock
from fleetview.sim.gce.faults import Faults
from fleetview.sim.gce.server import GceEmulator
from fleetview.sim.gce.state import GceState

__all__ = ["EmulatedClock", "Faults", "GceEmulator", "GceState"]
