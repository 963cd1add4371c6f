package main

import (
	"crypto/rand"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// hooks are the SOAP methods the interceptor acts on, for every caller.
var hooks = map[string]func(*interceptor, *request){
	"Login":                       (*interceptor).login,
	"LoginByToken":                (*interceptor).refuseLogin,
	"LoginBySSPI":                 (*interceptor).refuseLogin,
	"LoginExtensionByCertificate": (*interceptor).refuseLogin,
	"LoginExtensionBySubjectName": (*interceptor).refuseLogin,
	"CreateUser":                  (*interceptor).createUser,
	"UpdateUser":                  (*interceptor).updateUser,
	"RemoveUser":                  (*interceptor).removeUser,
	"RetrieveUserGroups":          (*interceptor).retrieveUserGroups,
	"AcquireTicket":               (*interceptor).acquireTicket,
	"AcquireMksTicket":            (*interceptor).acquireMksTicket,
	"RegisterVM_Task":             (*interceptor).registerVM,
	"CreateVM_Task":               (*interceptor).createVM,
	"CloneVM_Task":                (*interceptor).cloneVM,
	"ReconfigVM_Task":             (*interceptor).reconfigVM,
	"PowerOnVM_Task":              (*interceptor).powerOn,
	"AnswerVM":                    (*interceptor).answerVM,
	"UnregisterVM":                (*interceptor).unregisterVM,
	"Destroy_Task":                (*interceptor).destroy,
	"CreateTask":                  (*interceptor).createTask,
	"SetTaskState":                (*interceptor).setTaskState,
	"UpdateProgress":              (*interceptor).updateProgress,
	"SetTaskDescription":          (*interceptor).setTaskDescription,
	// Changes that the .vmx records.
	"Rename_Task":                  (*interceptor).syncAfter,
	"UpgradeVM_Task":               (*interceptor).syncAfter,
	"MarkAsTemplate":               (*interceptor).syncAfter,
	"MarkAsVirtualMachine":         (*interceptor).syncAfter,
	"RevertToSnapshot_Task":        (*interceptor).syncAfter,
	"RemoveSnapshot_Task":          (*interceptor).syncAfter,
	"RevertToCurrentSnapshot_Task": (*interceptor).syncAfter,
	"RelocateVM_Task":              (*interceptor).syncAfter,
	// File tasks whose stock info.entity is the manager (not a managed entity, which
	// pyVmomi refuses to read): the datastore of the file instead.
	"DeleteDatastoreFile_Task": (*interceptor).fileTask,
	"MoveDatastoreFile_Task":   (*interceptor).fileTask,
	"CopyDatastoreFile_Task":   (*interceptor).fileTask,
	"CreateVirtualDisk_Task":   (*interceptor).fileTask,
	"DeleteVirtualDisk_Task":   (*interceptor).fileTask,
	"MoveVirtualDisk_Task":     (*interceptor).fileTask,
	"CopyVirtualDisk_Task":     (*interceptor).fileTask,
	"ExtendVirtualDisk_Task":   (*interceptor).fileTask,
}

func (x *interceptor) dispatch(req *request) {
	if h := hooks[req.method.Name]; h != nil {
		h(x, req)
		return
	}
	x.next.ServeHTTP(req.w, req.r)
}

// vmOfThis is the VM a call is about: the VM itself or a snapshot's VM.
func vmOfThis(ref types.ManagedObjectReference) types.ManagedObjectReference {
	if snap, ok := simulator.Map.Get(ref).(*simulator.VirtualMachineSnapshot); ok {
		var vm types.ManagedObjectReference
		simulator.Map.WithLock(snap, func() { vm = snap.Vm })
		return vm
	}
	return ref
}

// syncAfter forwards the call and writes the VM's .vmx when it succeeded.
// A snapshot's task names the snapshot as its entity in the stock simulator
// (pyVmomi refuses to read it: not a managed entity); vSphere names the VM.
func (x *interceptor) syncAfter(req *request) {
	vm := vmOfThis(req.method.This) // before: removing a snapshot removes its object
	rec := x.forward(req)
	if rec.Code == http.StatusOK && isVM(vm) {
		x.syncVMX(vm)
		if vm != req.method.This {
			if ref, ok := returnval(rec); ok {
				if task, ok := simulator.Map.Get(ref).(*simulator.Task); ok {
					name := ""
					if e, ok := simulator.Map.Get(vm).(*simulator.VirtualMachine); ok {
						simulator.Map.WithLock(e, func() { name = e.Name })
					}
					simulator.Map.Update(task, []types.PropertyChange{{Name: "info.entity", Val: vm}, {Name: "info.entityName", Val: name}})
				}
			}
		}
	}
	flush(req.w, rec)
}

// syncResult forwards a call that returns a task creating a VM and writes the new VM's .vmx.
func (x *interceptor) syncResult(req *request) {
	rec := x.forward(req)
	if task, ok := returnval(rec); ok {
		if res, fault := taskResult(task); fault == nil {
			if vm, ok := res.(types.ManagedObjectReference); ok && isVM(vm) {
				x.syncVMX(vm)
			}
		}
	}
	flush(req.w, rec)
}

func (x *interceptor) createVM(req *request) {
	spec := &req.method.Body.(*types.CreateVM_Task).Config
	if task, refused := x.refuseStaticMACs(req.method.This, "CreateVM_Task", spec); refused {
		writeResult(req.w, &types.CreateVM_TaskResponse{Returnval: task})
		return
	}
	x.syncResult(req)
}

func (x *interceptor) cloneVM(req *request) {
	if spec := req.method.Body.(*types.CloneVM_Task).Spec.Config; spec != nil {
		if task, refused := x.refuseStaticMACs(req.method.This, "CloneVM_Task", spec); refused {
			writeResult(req.w, &types.CloneVM_TaskResponse{Returnval: task})
			return
		}
	}
	x.syncResult(req)
}

func (x *interceptor) reconfigVM(req *request) {
	spec := &req.method.Body.(*types.ReconfigVM_Task).Spec
	if task, refused := x.refuseStaticMACs(req.method.This, "ReconfigVM_Task", spec); refused {
		writeResult(req.w, &types.ReconfigVM_TaskResponse{Returnval: task})
		return
	}
	restore := placeholderNetworks(req.method.This, spec)
	x.syncAfter(req)
	restore()
}

// placeholderNetworks works around stock removeDevice, which dereferences a NIC's backing
// network: a NIC registered from a .vmx whose network this site does not have keeps only the
// network's name (no reference), and editing or removing it panicked ("Remote end closed
// connection"), where vSphere simply moves it.  Such a NIC gets a placeholder reference for the
// call; one the call did not replace loses it again.
func placeholderNetworks(ref types.ManagedObjectReference, spec *types.VirtualMachineConfigSpec) func() {
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return func() {}
	}
	var patched []*types.VirtualEthernetCardNetworkBackingInfo
	placeholder := &types.ManagedObjectReference{Type: "Network", Value: "missing"}
	simulator.Map.WithLock(vm, func() {
		for _, change := range spec.DeviceChange {
			c := change.GetVirtualDeviceConfigSpec()
			if c.Operation != types.VirtualDeviceConfigSpecOperationEdit && c.Operation != types.VirtualDeviceConfigSpecOperationRemove {
				continue
			}
			for _, d := range vm.Config.Hardware.Device {
				card, isCard := d.(types.BaseVirtualEthernetCard)
				if !isCard || d.GetVirtualDevice().Key != c.Device.GetVirtualDevice().Key {
					continue
				}
				if b, ok := card.GetVirtualEthernetCard().Backing.(*types.VirtualEthernetCardNetworkBackingInfo); ok && b.Network == nil {
					b.Network = placeholder
					patched = append(patched, b)
				}
			}
		}
	})
	return func() {
		if len(patched) == 0 {
			return
		}
		simulator.Map.WithLock(vm, func() {
			for _, b := range patched {
				if b.Network == placeholder {
					b.Network = nil
				}
			}
		})
	}
}

func (x *interceptor) unregisterVM(req *request) {
	x.syncVMX(req.method.This) // the file is what registers it again
	rec := x.forward(req)
	if rec.Code == http.StatusOK {
		x.forget(req.method.This)
	}
	flush(req.w, rec)
}

func (x *interceptor) destroy(req *request) {
	rec := x.forward(req)
	if isVM(req.method.This) {
		if task, ok := returnval(rec); ok {
			if _, fault := taskResult(task); fault == nil {
				x.forget(req.method.This)
			}
		}
	}
	flush(req.w, rec)
}

func (x *interceptor) fileTask(req *request) {
	rec := x.forward(req)
	if ref, ok := returnval(rec); ok {
		if task, ok := simulator.Map.Get(ref).(*simulator.Task); ok {
			name, _ := fieldOf(req.method.Body, "Name").(string)
			if name == "" {
				name, _ = fieldOf(req.method.Body, "SourceName").(string)
			}
			dc, _ := fieldOf(req.method.Body, "Datacenter").(*types.ManagedObjectReference)
			if dc == nil {
				dc, _ = fieldOf(req.method.Body, "SourceDatacenter").(*types.ManagedObjectReference)
			}
			changes := []types.PropertyChange{{Name: "info.entity", Val: nil}, {Name: "info.entityName", Val: ""}}
			if ds := datastoreOfPath(name, dc); ds != nil {
				changes = []types.PropertyChange{{Name: "info.entity", Val: ds.Self}, {Name: "info.entityName", Val: ds.Name}}
			}
			simulator.Map.Update(task, changes)
		}
	}
	flush(req.w, rec)
}

// Static MAC addresses.

// Manual (static) MACs must be in VMware's range for them: 00:50:56:00:00:00-00:50:56:3F:FF:FF.
func inManualRange(mac string) bool {
	hw, err := net.ParseMAC(mac)
	return err == nil && len(hw) == 6 && hw[0] == 0x00 && hw[1] == 0x50 && hw[2] == 0x56 && hw[3] <= 0x3f
}

// staticMACMessage is what vSphere says of a static MAC outside the range.
func staticMACMessage(mac string) string {
	if hw, err := net.ParseMAC(mac); err == nil && len(hw) == 6 && hw[0] == 0x00 && hw[1] == 0x50 && hw[2] == 0x56 {
		return fmt.Sprintf("%s is not a valid static Ethernet address. It conflicts with VMware reserved MACs for other usage.", mac)
	}
	return fmt.Sprintf("Impermissible static Ethernet address: '%s'. It conflicts with VMware reserved MACs.", mac)
}

func isManual(addressType string) bool {
	return strings.EqualFold(addressType, string(types.VirtualEthernetCardMacTypeManual))
}

// refuseStaticMACs is vCenter's check of a configuration spec: a NIC added or
// edited with a manual MAC outside the range fails the task with
// InvalidDeviceSpec.  ESXi (esx mode) accepts the spec; the VM then fails to
// power on (staticMACFault).
func (x *interceptor) refuseStaticMACs(target types.ManagedObjectReference, name string, spec *types.VirtualMachineConfigSpec) (types.ManagedObjectReference, bool) {
	if x.mode != "vcenter" {
		return types.ManagedObjectReference{}, false
	}
	for i, change := range spec.DeviceChange {
		ds := change.GetVirtualDeviceConfigSpec()
		card, ok := ds.Device.(types.BaseVirtualEthernetCard)
		if !ok || ds.Operation == types.VirtualDeviceConfigSpecOperationRemove {
			continue
		}
		c := card.GetVirtualEthernetCard()
		if isManual(c.AddressType) && !inManualRange(c.MacAddress) {
			msg := staticMACMessage(c.MacAddress)
			fault := &types.InvalidDeviceSpec{
				InvalidVmConfig: types.InvalidVmConfig{Property: "virtualDeviceSpec.device.macAddress"},
				DeviceIndex:     int32(i),
			}
			fault.FaultMessage = []types.LocalizableMessage{{Key: "com.vmware.vim.vpxd.vm.staticMacAddress", Message: msg}}
			return failedTask(target, name, msg, fault), true
		}
	}
	return types.ManagedObjectReference{}, false
}

// staticMACFault is the power-on check (ESXi and vCenter alike): a VM whose
// NIC has a static MAC outside the range does not power on.
func staticMACFault(vmRef types.ManagedObjectReference) (string, types.BaseMethodFault) {
	vm, ok := simulator.Map.Get(vmRef).(*simulator.VirtualMachine)
	if !ok {
		return "", nil
	}
	var msg string
	simulator.Map.WithLock(vm, func() {
		if vm.Config == nil {
			return
		}
		for _, d := range vm.Config.Hardware.Device {
			if card, ok := d.(types.BaseVirtualEthernetCard); ok {
				c := card.GetVirtualEthernetCard()
				if isManual(c.AddressType) && !inManualRange(c.MacAddress) {
					msg = staticMACMessage(c.MacAddress)
					return
				}
			}
		}
	})
	if msg == "" {
		return "", nil
	}
	return msg, &types.GenericVmConfigFault{Reason: msg}
}

// Registering a .vmx.

func (x *interceptor) registerVM(req *request) {
	body := req.method.Body.(*types.RegisterVM_Task)
	dc := datacenterRef(req.method.This)
	var cfg *vmxConfig
	if file := localPath(body.Path, dc); file != "" {
		if data, err := os.ReadFile(file); err == nil {
			cfg = readVMX(data, body.Path)
			// The stock register opens <name>.nvram and vmware.log beside the
			// .vmx; ESXi needs neither (it creates them at power-on).
			name := body.Name
			if name == "" {
				var p object.DatastorePath
				p.FromString(body.Path)
				name = path.Dir(p.Path)
			}
			for _, f := range []string{name + ".nvram", "vmware.log"} {
				touch(filepath.Join(filepath.Dir(file), f))
			}
		}
	}
	rec := x.forward(req)
	if task, ok := returnval(rec); ok && cfg != nil {
		if res, fault := taskResult(task); fault == nil {
			if vm, ok := res.(types.ManagedObjectReference); ok {
				if err := x.applyVMX(vm, cfg, body.Name == ""); err != nil {
					log.Printf("register %s: %v", body.Path, err)
					x.failRegister(task, vm, err)
				}
			}
		}
	}
	flush(req.w, rec)
}

func touch(file string) {
	if _, err := os.Stat(file); os.IsNotExist(err) {
		if f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			_ = f.Close()
		}
	}
}

// failRegister unregisters a VM whose .vmx could not be applied and fails its register task.
func (x *interceptor) failRegister(task, vm types.ManagedObjectReference, err error) {
	_, _ = methods.UnregisterVM(x.ctx, x.client, &types.UnregisterVM{This: vm})
	fault := &types.InvalidVmConfig{Property: "vmx"}
	finishTask(task, &types.LocalizedMethodFault{Fault: fault, LocalizedMessage: err.Error()})
}

// applyVMX gives a freshly registered VM (stock defaults) the configuration of its .vmx.
func (x *interceptor) applyVMX(ref types.ManagedObjectReference, cfg *vmxConfig, rename bool) error {
	vmObj, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return errorf("VM %s is gone", ref.Value)
	}
	dc := datacenterRef(ref)
	spec := types.VirtualMachineConfigSpec{
		Version:           cfg.version,
		NumCPUs:           cfg.cpus,
		NumCoresPerSocket: cfg.cores,
		MemoryMB:          cfg.memoryMB,
		Uuid:              cfg.uuid,
		InstanceUuid:      cfg.instance,
		Firmware:          cfg.firmware,
		Annotation:        cfg.annotation,
	}
	if spec.Uuid == "" {
		spec.Uuid = randomUUID() // ESXi writes a new uuid.bios into a .vmx without one
	}
	if rename {
		spec.Name = cfg.name
	}
	if cfg.nestedHV {
		spec.NestedHVEnabled = types.NewBool(true)
	}
	for _, e := range cfg.extra {
		spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: e.key, Value: e.value})
	}

	var devices object.VirtualDeviceList
	for i, c := range cfg.controllers {
		var ctl types.BaseVirtualDevice
		var err error
		switch c.prefix {
		case "scsi":
			kind := scsiKinds[c.kind]
			if kind == "" {
				kind = "lsilogic"
			}
			ctl, err = devices.CreateSCSIController(kind)
			if err == nil {
				ctl.(types.BaseVirtualSCSIController).GetVirtualSCSIController().BusNumber = c.bus
			}
		case "sata":
			ctl = &types.VirtualAHCIController{
				VirtualSATAController: types.VirtualSATAController{
					VirtualController: types.VirtualController{BusNumber: c.bus},
				},
			}
		case "nvme":
			ctl, err = devices.CreateNVMEController()
			if err == nil {
				ctl.(types.BaseVirtualController).GetVirtualController().BusNumber = c.bus
			}
		}
		if err != nil || ctl == nil {
			continue
		}
		ctl.GetVirtualDevice().Key = -1000 - int32(i)
		devices = append(devices, ctl)
	}
	var detached []vmxNIC
	for i, n := range cfg.nics {
		if n.network == "" || networkOf(&types.VirtualEthernetCardNetworkBackingInfo{
			VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: n.network},
		}, dc).Value == "" {
			detached = append(detached, n) // no such network here: added as is below
			continue
		}
		card, err := nicDevice(n, -4000-int32(i))
		if err != nil {
			return err
		}
		devices = append(devices, card)
	}
	spec.DeviceChange, _ = devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)

	vm := object.NewVirtualMachine(x.client, ref)
	task, err := vm.Reconfigure(x.ctx, spec)
	if err == nil {
		err = task.Wait(x.ctx)
	}
	if err != nil {
		return err
	}
	if cfg.guest != "" {
		// Set as read: the stock reconfiguration knows fewer guest ids than a .vmx may carry.
		simulator.Map.WithLock(vmObj, func() {
			simulator.Map.Update(vmObj, []types.PropertyChange{
				{Name: "config.guestId", Val: cfg.guest},
				{Name: "config.guestFullName", Val: cfg.guest},
				{Name: "summary.config.guestId", Val: cfg.guest},
				{Name: "summary.config.guestFullName", Val: cfg.guest},
			})
		})
	}
	if len(cfg.disks) != 0 || len(detached) != 0 {
		x.appendDevices(vmObj, cfg, detached, dc)
		if _, err := methods.RefreshStorageInfo(x.ctx, x.client, &types.RefreshStorageInfo{This: ref}); err != nil {
			return err
		}
	}
	x.decideQuestion(ref, cfg)
	x.syncVMX(ref)
	return nil
}

func nicDevice(n vmxNIC, key int32) (types.BaseVirtualDevice, error) {
	kind := nicKinds[strings.ToLower(n.kind)]
	if kind == "" {
		kind = "pcnet32" // ESXi's default virtualDev
	}
	var backing types.BaseVirtualDeviceBackingInfo = &types.VirtualEthernetCardNetworkBackingInfo{
		VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: n.network},
	}
	if n.dvsSwitch != "" {
		backing = &types.VirtualEthernetCardDistributedVirtualPortBackingInfo{
			Port: types.DistributedVirtualSwitchPortConnection{SwitchUuid: n.dvsSwitch, PortgroupKey: n.dvsPortgroup},
		}
	}
	card, err := object.VirtualDeviceList{}.CreateEthernetCard(kind, backing)
	if err != nil {
		return nil, err
	}
	c := card.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
	c.Key = key
	// vSphere's label, which the stock reconfiguration would make "ethernet-<unit>" (the same for every NIC).
	c.DeviceInfo = &types.Description{Label: fmt.Sprintf("Network adapter %d", n.index+1), Summary: n.network}
	c.AddressType = n.addressType
	c.MacAddress = n.mac
	c.Connectable = &types.VirtualDeviceConnectInfo{StartConnected: n.startConnected, AllowGuestControl: true}
	return card, nil
}

// appendDevices adds the .vmx's disks, and the NICs whose network this site
// does not have, directly to the VM's device list: the stock reconfiguration
// requires disk files to exist and NIC networks to resolve.
func (x *interceptor) appendDevices(vm *simulator.VirtualMachine, cfg *vmxConfig, detached []vmxNIC, dc *types.ManagedObjectReference) {
	capacities := map[string]int64{}
	for _, d := range cfg.disks {
		capacities[d.file] = descriptorCapacity(localPath(d.file, dc))
	}
	stores := map[string]*types.ManagedObjectReference{}
	for _, d := range cfg.disks {
		var p object.DatastorePath
		p.FromString(d.file)
		if ds := datastoreByName(p.Datastore, dc); ds != nil {
			self := ds.Self
			stores[d.file] = &self
		}
	}
	simulator.Map.WithLock(vm, func() {
		devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
		key := func(from int32) int32 {
			for k := from; ; k++ {
				if devices.FindByKey(k) == nil {
					return k
				}
			}
		}
		controller := func(prefix string, bus int32) types.BaseVirtualController {
			for _, d := range devices {
				if p, _, b := controllerPrefix(d); p == prefix && b == bus {
					return d.(types.BaseVirtualController)
				}
			}
			return nil
		}
		disks := 0
		for _, d := range cfg.disks {
			ctl := controller(d.prefix, d.bus)
			if ctl == nil {
				continue
			}
			unit := d.unit
			mode := d.mode
			if mode == "" {
				mode = string(types.VirtualDiskModePersistent)
			}
			kb := capacities[d.file]
			disk := &types.VirtualDisk{
				VirtualDevice: types.VirtualDevice{
					Key:           key(2000),
					ControllerKey: ctl.GetVirtualController().Key,
					UnitNumber:    &unit,
					DeviceInfo: &types.Description{
						Label:   fmt.Sprintf("Hard disk %d", disks+1),
						Summary: fmt.Sprintf("%d KB", kb),
					},
					Backing: &types.VirtualDiskFlatVer2BackingInfo{
						VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: d.file, Datastore: stores[d.file]},
						DiskMode:                     mode,
						ThinProvisioned:              types.NewBool(false),
						EagerlyScrub:                 types.NewBool(false),
						WriteThrough:                 types.NewBool(false),
						Split:                        types.NewBool(false),
						DigestEnabled:                types.NewBool(false),
					},
				},
				CapacityInKB:    kb,
				CapacityInBytes: kb * 1024,
			}
			c := ctl.GetVirtualController()
			c.Device = append(c.Device, disk.Key)
			devices = append(devices, disk)
			disks++
		}
		pci := devices.PickController((*types.VirtualPCIController)(nil))
		for _, n := range detached {
			card, err := nicDevice(n, key(4000))
			if err != nil {
				continue
			}
			c := card.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
			if pci != nil {
				devices.AssignController(card, pci)
			}
			c.DeviceInfo = &types.Description{Label: fmt.Sprintf("Network adapter %d", n.index+1), Summary: n.network}
			devices = append(devices, card)
		}
		nics := len(devices.SelectByType((*types.VirtualEthernetCard)(nil)))
		vdisks := len(devices.SelectByType((*types.VirtualDisk)(nil)))
		simulator.Map.Update(vm, []types.PropertyChange{
			{Name: "config.hardware.device", Val: []types.BaseVirtualDevice(devices)},
			{Name: "summary.config.numEthernetCards", Val: int32(nics)},
			{Name: "summary.config.numVirtualDisks", Val: int32(vdisks)},
		})
	})
}

// MAC addresses a host generates: 00:0c:29 and the BIOS UUID's last three
// bytes plus the NIC's offset; vCenter assigns 00:50:56:80-bf:xx:xx.
func generatedMAC(uuid string, offset int) string {
	raw := []byte(strings.ReplaceAll(uuid, "-", ""))
	b := func(i int) byte {
		var v byte
		_, _ = fmt.Sscanf(string(raw[2*i:2*i+2]), "%02x", &v)
		return v
	}
	if len(raw) != 32 {
		return ""
	}
	return fmt.Sprintf("00:0c:29:%02x:%02x:%02x", b(13), b(14), b(15)+byte(offset))
}

func assignedMAC() string {
	r := make([]byte, 3)
	_, _ = rand.Read(r)
	return fmt.Sprintf("00:50:56:%02x:%02x:%02x", 0x80|r[0]&0x3f, r[1], r[2])
}
