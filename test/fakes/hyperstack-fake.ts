/**
 * A stateful local fake of Hyperstack's Infrahub API (the virtual-machine routes zeropool uses), in the shapes
 * of the official client's models (`CreateInstancesPayload`, `CreateInstancesResponse`, `Instances`,
 * `Instance`, `InstanceFields`, `ResponseModel`, `ErrorResponseModel`): the suite runs the
 * official Python client (PyPI `hyperstack`) against it, so the fake cannot drift from those shapes.
 * VMs go CREATING → BUILD → ACTIVE; deleting goes through DELETING. Knobs: stock per flavor, faults.
 *
 * Assumption, marked as such: the text of a stock-out message is not published; the fake answers 400 with
 * "Not enough stock available for flavor …" (the driver treats any 400 that speaks of stock or capacity so).
 */
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { envFromUserData, startModelServer } from './model-server-process';

interface FakeVm {
  id: number;
  name: string;
  status: string;
  labels: string[];
  fixed_ip: string;
  floating_ip: string | null;
  floating_ip_status: string | null;
  created_at: string;
  environment: { id: number; name: string; region: string; org_id: number };
  flavor: { id: number; name: string; gpu: string; gpu_count: number; cpu: number; ram: number; disk: number };
  image: { name: string };
  keypair: { name: string };
  security_rules: unknown[];
  user_data?: string;
  assignFloatingIp: boolean;
  createdMs: number;
  deletedMs?: number;
  /** When a hibernation was asked for (HIBERNATING, then HIBERNATED). */
  hibernatingMs?: number;
  server?: ChildProcess;
}

export interface HyperstackFakeOptions {
  apiKey: string;
  environments?: string[];
  /** Milliseconds from create to BUILD and to ACTIVE. */
  buildMs?: number;
  activeMs?: number;
  /** The public address an ACTIVE VM with a floating IP gets (a test points it at a local model server). */
  floatingIp?: string;
  /**
   * Boot the mock model server on each ACTIVE VM, as its user data would: with the `KEY=value` variables the
   * user data sets, on the VM's own loopback address (127.0.0.<n>, the floating IP) and its labelled port.
   */
  modelServers?: boolean;
}

/** A fault for the next matching calls: answer `status`, or (`afterEffect`) do the call and lose its answer. */
interface Fault {
  method: string;
  pathPrefix: string;
  status: number;
  remaining: number;
  afterEffect?: boolean;
  retryAfterSeconds?: number;
}

/** The GPU model and count of a flavor, from its name (`n3-A100x1`, `n3-H100x2`). */
function flavorGpu(flavor: string): { gpu: string; count: number } {
  const match = /-([A-Z0-9]+)x(\d+)$/.exec(flavor);
  return { gpu: `${match?.[1] ?? 'A100'}-80G-PCIe`, count: Number(match?.[2] ?? 1) };
}

export class HyperstackFake {
  readonly vms = new Map<number, FakeVm>();
  /** Create calls that made a VM (what "no duplicate" is counted by). */
  created = 0;
  /** Every create body received (checked against the official client's request model). */
  readonly createBodies: Array<Record<string, unknown>> = [];
  /** Every request: method, path, status answered. */
  readonly calls: Array<{ method: string; path: string; status: number }> = [];
  /** VMs of a flavor that can still be created (absent flavor: unlimited). */
  readonly stock = new Map<string, number>();
  /** Hourly prices per GPU model, as `GET /pricebook` lists them. */
  readonly pricebook: Array<{ name: string; value: number }> = [
    { name: 'A100-80G-PCIe', value: 1.35 },
    { name: 'H100-80G-PCIe', value: 1.9 },
  ];
  private faults: Fault[] = [];
  private nextId = 101;
  private server?: http.Server;
  url = '';

  constructor(private readonly options: HyperstackFakeOptions) {}

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err) => this.send(res, req, 500, { status: false, message: String(err), error_reason: 'internal' }));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/v1`;
    return this;
  }

  async stop(): Promise<void> {
    for (const vm of this.vms.values()) this.stopServer(vm);
    if (!this.server) return;
    // Clients keep connections alive: close them, or close() waits for ever.
    this.server.closeAllConnections();
    await new Promise((r) => this.server!.close(r));
  }

  fault(fault: Omit<Fault, 'remaining'> & { count?: number }): void {
    this.faults.push({ ...fault, remaining: fault.count ?? 1 });
  }

  /** The provider takes a VM away (host failure, operator): it shows SHUTOFF. */
  shutOff(id: number): void {
    const vm = this.vms.get(id);
    if (!vm) return;
    vm.status = 'SHUTOFF';
    this.stopServer(vm);
  }

  private advance(vm: FakeVm): void {
    const age = Date.now() - vm.createdMs;
    if (vm.status === 'CREATING' && age >= (this.options.buildMs ?? 100)) vm.status = 'BUILD';
    if (vm.status === 'BUILD' && age >= (this.options.activeMs ?? 300)) {
      vm.status = 'ACTIVE';
      if (vm.assignFloatingIp) {
        vm.floating_ip = this.options.modelServers
          ? `127.0.0.${20 + (vm.id % 200)}`
          : (this.options.floatingIp ?? `203.0.113.${vm.id % 250}`);
        vm.floating_ip_status = 'ATTACHED';
      }
      if (this.options.modelServers) {
        const port = Number(vm.labels.find((l) => l.startsWith('zeropool-port='))?.split('=')[1] ?? 8000);
        vm.server = startModelServer({ host: vm.floating_ip ?? vm.fixed_ip, port, env: envFromUserData(vm.user_data) });
      }
    }
    if (vm.status === 'HIBERNATING' && Date.now() - (vm.hibernatingMs ?? 0) >= (this.options.buildMs ?? 100)) vm.status = 'HIBERNATED';
    if (vm.status !== 'ACTIVE') this.stopServer(vm);
    if (vm.status === 'DELETING' && Date.now() - (vm.deletedMs ?? 0) >= 200) this.vms.delete(vm.id);
  }

  private stopServer(vm: FakeVm): void {
    vm.server?.kill('SIGKILL');
    vm.server = undefined;
  }

  private view(vm: FakeVm) {
    const {
      user_data: _userData,
      assignFloatingIp: _assign,
      createdMs: _created,
      deletedMs: _deleted,
      hibernatingMs: _hibernating,
      server: _server,
      ...fields
    } = vm;
    return fields;
  }

  private send(
    res: http.ServerResponse,
    req: http.IncomingMessage,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    this.calls.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0]!, status });
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname.replace(/^\/v1/, '');
    const method = req.method ?? 'GET';
    if (req.headers.api_key !== this.options.apiKey) {
      return this.send(res, req, 401, { status: false, message: 'Invalid API key', error_reason: 'authentication_failed' });
    }
    const fault = this.faults.find((f) => f.remaining > 0 && f.method === method && path.startsWith(f.pathPrefix));
    if (fault) fault.remaining -= 1;
    const failWith = (status: number) =>
      this.send(
        res,
        req,
        status,
        { status: false, message: `fake fault ${status}`, error_reason: 'fault' },
        fault?.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {},
      );
    if (fault && !fault.afterEffect) return failWith(fault.status);
    const raw = await new Promise<string>((resolve) => {
      let data = '';
      req.on('data', (c: Buffer) => {
        data += c.toString();
      });
      req.on('end', () => resolve(data));
    });

    for (const vm of this.vms.values()) this.advance(vm);

    if (path === '/core/virtual-machines' && method === 'POST') {
      const body = (raw ? JSON.parse(raw) : {}) as Record<string, unknown>;
      this.createBodies.push(body);
      const missing = ['name', 'environment_name', 'flavor_name', 'key_name', 'count'].filter((k) => body[k] === undefined);
      if (missing.length > 0)
        return this.send(res, req, 400, { status: false, message: `missing fields: ${missing.join(', ')}`, error_reason: 'bad_request' });
      if (typeof body.name !== 'string' || body.name.length > 50) {
        return this.send(res, req, 400, { status: false, message: 'name must be at most 50 characters', error_reason: 'bad_request' });
      }
      const environment = String(body.environment_name);
      if (!(this.options.environments ?? ['CANADA-1']).includes(environment)) {
        return this.send(res, req, 404, { status: false, message: `Environment ${environment} not found`, error_reason: 'not_found' });
      }
      const flavor = String(body.flavor_name);
      const left = this.stock.get(flavor);
      if (left !== undefined && left < 1) {
        return this.send(res, req, 400, {
          status: false,
          message: `Not enough stock available for flavor ${flavor}`,
          error_reason: 'stock',
        });
      }
      if (left !== undefined) this.stock.set(flavor, left - 1);
      const id = this.nextId++;
      const vm: FakeVm = {
        id,
        name: body.name,
        status: 'CREATING',
        labels: (body.labels as string[] | undefined) ?? [],
        fixed_ip: `10.0.0.${id % 250}`,
        floating_ip: null,
        floating_ip_status: body.assign_floating_ip ? 'ATTACHING' : null,
        created_at: new Date().toISOString(),
        environment: { id: 1, name: environment, region: 'CANADA-1', org_id: 7 },
        flavor: { id: 11, name: flavor, gpu: flavorGpu(flavor).gpu, gpu_count: flavorGpu(flavor).count, cpu: 28, ram: 120, disk: 100 },
        image: { name: String(body.image_name ?? '') },
        keypair: { name: String(body.key_name) },
        security_rules: [],
        user_data: body.user_data as string | undefined,
        assignFloatingIp: body.assign_floating_ip === true,
        createdMs: Date.now(),
      };
      this.vms.set(id, vm);
      this.created += 1;
      if (fault?.afterEffect) return failWith(fault.status);
      return this.send(res, req, 200, { status: true, message: 'Creating 1 virtual machine(s)', instances: [this.view(vm)] });
    }
    if (path === '/pricebook' && method === 'GET') {
      return this.send(
        res,
        req,
        200,
        this.pricebook.map((p, i) => ({ id: i + 1, discount_applied: false, original_value: p.value, ...p })),
      );
    }
    if (path === '/core/virtual-machines' && method === 'GET') {
      const search = url.searchParams.get('search');
      const page = Number(url.searchParams.get('page') ?? 1);
      const pageSize = Number(url.searchParams.get('page_size') ?? 30);
      const matching = [...this.vms.values()].filter((vm) => !search || vm.name.includes(search));
      const slice = matching.slice((page - 1) * pageSize, page * pageSize);
      return this.send(res, req, 200, {
        status: true,
        message: 'Getting VM list success',
        instances: slice.map((vm) => this.view(vm)),
        count: matching.length,
        page,
        page_size: pageSize,
      });
    }
    const hibernation = /^\/core\/virtual-machines\/(\d+)\/(hibernate|hibernate-restore)$/.exec(path);
    if (hibernation && method === 'GET') {
      const vm = this.vms.get(Number(hibernation[1]));
      if (!vm)
        return this.send(res, req, 404, {
          status: false,
          message: `Virtual machine ${hibernation[1]} not found`,
          error_reason: 'not_found',
        });
      return hibernation[2] === 'hibernate' ? this.hibernate(req, res, vm, url) : this.restore(req, res, vm);
    }
    const one = /^\/core\/virtual-machines\/(\d+)$/.exec(path);
    if (one) {
      const vm = this.vms.get(Number(one[1]));
      if (!vm)
        return this.send(res, req, 404, { status: false, message: `Virtual machine ${one[1]} not found`, error_reason: 'not_found' });
      if (method === 'GET') return this.send(res, req, 200, { status: true, message: 'Getting VM success', instance: this.view(vm) });
      if (method === 'DELETE') {
        this.stopServer(vm);
        vm.status = 'DELETING';
        vm.deletedMs = Date.now();
        return this.send(res, req, 200, { status: true, message: 'Deleting virtual machine' });
      }
    }
    return this.send(res, req, 405, { status: false, message: `no route ${method} ${path}`, error_reason: 'method_not_allowed' });
  }

  /**
   * `GET /core/virtual-machines/{id}/hibernate`: an ACTIVE VM saves its state to disk and powers off (HIBERNATING,
   * then HIBERNATED); its GPU goes back to the flavor's stock and, unless `retain_ip=true`, its floating IP is
   * released. Any other state: 400 (assumption: the refusal's text is not published).
   */
  private hibernate(req: http.IncomingMessage, res: http.ServerResponse, vm: FakeVm, url: URL) {
    if (vm.status !== 'ACTIVE')
      return this.send(res, req, 400, { status: false, message: `Cannot hibernate a VM that is ${vm.status}`, error_reason: 'state' });
    vm.status = 'HIBERNATING';
    vm.hibernatingMs = Date.now();
    this.stopServer(vm);
    if (url.searchParams.get('retain_ip') !== 'true') {
      vm.floating_ip = null;
      vm.floating_ip_status = vm.assignFloatingIp ? 'ATTACHING' : null;
    }
    const left = this.stock.get(vm.flavor.name);
    if (left !== undefined) this.stock.set(vm.flavor.name, left + 1);
    return this.send(res, req, 200, { status: true, message: 'Virtual machine hibernation initiated' });
  }

  /**
   * `GET /core/virtual-machines/{id}/hibernate-restore`: a HIBERNATED VM boots again (BUILD, then ACTIVE) if its
   * flavor has stock; none left is the create's stock-out answer (400, assumption as there).
   */
  private restore(req: http.IncomingMessage, res: http.ServerResponse, vm: FakeVm) {
    if (vm.status !== 'HIBERNATED')
      return this.send(res, req, 400, { status: false, message: `Cannot restore a VM that is ${vm.status}`, error_reason: 'state' });
    const left = this.stock.get(vm.flavor.name);
    if (left !== undefined && left < 1) {
      return this.send(res, req, 400, {
        status: false,
        message: `Not enough stock available for flavor ${vm.flavor.name}`,
        error_reason: 'stock',
      });
    }
    if (left !== undefined) this.stock.set(vm.flavor.name, left - 1);
    vm.status = 'BUILD';
    vm.createdMs = Date.now() - (this.options.buildMs ?? 100);
    return this.send(res, req, 200, { status: true, message: 'Virtual machine restore from hibernation initiated' });
  }

  /** The user data a VM was created with (what the node would boot with). */
  userDataOf(name: string): string | undefined {
    return [...this.vms.values()].find((vm) => vm.name === name)?.user_data;
  }
}
