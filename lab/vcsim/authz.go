package main

import (
	"reflect"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Privileges for sessions that are not the lab administrator's.
//
// Each rule names the privileges vSphere requires for a method and the entity
// each is checked on (the "Required privilege" of the vSphere API reference).
// A privilege is granted when the user holds a role with it on the entity,
// directly or through a propagating permission on an ancestor; the nearest
// permission wins.  A virtual machine inherits from its folder and from its
// resource pool.  Methods without a rule are not checked (reads, property
// collection, tasks, sessions).

type check struct {
	entity types.ManagedObjectReference
	priv   string
}

type rule func(m *simulator.Method) []check

func on(ref types.ManagedObjectReference, priv string) []check {
	if ref.Value == "" {
		return nil
	}
	return []check{{ref, priv}}
}

func onThis(priv string) rule {
	return func(m *simulator.Method) []check { return on(m.This, priv) }
}

// onHost checks a host configuration manager's method on its host.
func onHost(priv string) rule {
	return func(m *simulator.Method) []check { return on(hostOfManager(m.This), priv) }
}

func onRoot(priv string) rule {
	return func(*simulator.Method) []check { return on(content().RootFolder, priv) }
}

// onSnapshotVM checks a snapshot's method on its virtual machine.
func onSnapshotVM(priv string) rule {
	return func(m *simulator.Method) []check {
		snap, ok := simulator.Map.Get(m.This).(*simulator.VirtualMachineSnapshot)
		if !ok {
			return nil
		}
		var vm types.ManagedObjectReference
		simulator.Map.WithLock(snap, func() { vm = snap.Vm })
		return on(vm, priv)
	}
}

// onField checks on the managed object named by a field of the request (Vm, Entity, ...).
func onField(field, priv string) rule {
	return func(m *simulator.Method) []check {
		ref, _ := fieldOf(m.Body, field).(types.ManagedObjectReference)
		return on(ref, priv)
	}
}

// onFiles checks datastore files named by fields of the request ("[ds] path"), with its Datacenter.
func onFiles(priv string, fields ...string) rule {
	return func(m *simulator.Method) []check {
		var dc *types.ManagedObjectReference
		switch v := fieldOf(m.Body, "Datacenter").(type) {
		case *types.ManagedObjectReference:
			dc = v
		}
		var out []check
		for _, f := range fields {
			name, _ := fieldOf(m.Body, f).(string)
			if ds := datastoreOfPath(name, dc); ds != nil {
				out = append(out, check{ds.Self, priv})
			}
		}
		return out
	}
}

var (
	hostNetwork    = onHost("Host.Config.Network")
	hostNetService = onHost("Host.Config.NetService")
	hostStorage    = onHost("Host.Config.Storage")
	manageAccounts = onRoot("Host.Local.ManageUserGroups")
	modifyRoles    = onRoot("Authorization.ModifyRoles")
	fileManagement = "Datastore.FileManagement"
)

var rules = map[string]rule{
	// Virtual machine inventory.
	"CreateVM_Task":                     createVMChecks,
	"RegisterVM_Task":                   registerVMChecks,
	"UnregisterVM":                      onThis("VirtualMachine.Inventory.Unregister"),
	"Destroy_Task":                      destroyChecks,
	"Rename_Task":                       renameChecks,
	"CreateFolder":                      onThis("Folder.Create"),
	"MoveIntoFolder_Task":               moveIntoFolderChecks,
	"CloneVM_Task":                      cloneChecks,
	"RelocateVM_Task":                   relocateChecks,
	"MarkAsTemplate":                    onThis("VirtualMachine.Provisioning.MarkAsTemplate"),
	"MarkAsVirtualMachine":              markAsVMChecks,
	"ReconfigVM_Task":                   reconfigChecks,
	"UpgradeVM_Task":                    onThis("VirtualMachine.Config.UpgradeVirtualHardware"),
	"ReloadVirtualMachineFromPath_Task": onThis("VirtualMachine.Config.ReloadFromPath"),
	"CreateResourcePool":                onThis("Resource.CreatePool"),
	"UpdateConfig":                      onThis("Resource.EditPool"),
	"CreateVApp":                        onThis("VApp.Create"),
	"ImportVApp":                        importVAppChecks, // the NFC lease for an import

	// Snapshots.
	"CreateSnapshot_Task":          onThis("VirtualMachine.State.CreateSnapshot"),
	"CreateSnapshotEx_Task":        onThis("VirtualMachine.State.CreateSnapshot"),
	"RevertToCurrentSnapshot_Task": onThis("VirtualMachine.State.RevertToSnapshot"),
	"RemoveAllSnapshots_Task":      onThis("VirtualMachine.State.RemoveSnapshot"),
	"RevertToSnapshot_Task":        onSnapshotVM("VirtualMachine.State.RevertToSnapshot"),
	"RemoveSnapshot_Task":          onSnapshotVM("VirtualMachine.State.RemoveSnapshot"),
	"RenameSnapshot":               onSnapshotVM("VirtualMachine.State.RenameSnapshot"),

	// Power and interaction.
	"PowerOnVM_Task":   onThis("VirtualMachine.Interact.PowerOn"),
	"PowerOffVM_Task":  onThis("VirtualMachine.Interact.PowerOff"),
	"ResetVM_Task":     onThis("VirtualMachine.Interact.Reset"),
	"SuspendVM_Task":   onThis("VirtualMachine.Interact.Suspend"),
	"ShutdownGuest":    onThis("VirtualMachine.Interact.PowerOff"),
	"RebootGuest":      onThis("VirtualMachine.Interact.Reset"),
	"StandbyGuest":     onThis("VirtualMachine.Interact.Suspend"),
	"AnswerVM":         onThis("VirtualMachine.Interact.AnswerQuestion"),
	"AcquireTicket":    onThis("VirtualMachine.Interact.ConsoleInteract"),
	"AcquireMksTicket": onThis("VirtualMachine.Interact.ConsoleInteract"),

	// Guest operations.
	"StartProgramInGuest":           onField("Vm", "VirtualMachine.GuestOperations.Execute"),
	"ListProcessesInGuest":          onField("Vm", "VirtualMachine.GuestOperations.Query"),
	"ListFilesInGuest":              onField("Vm", "VirtualMachine.GuestOperations.Query"),
	"InitiateFileTransferFromGuest": onField("Vm", "VirtualMachine.GuestOperations.Query"),
	"InitiateFileTransferToGuest":   onField("Vm", "VirtualMachine.GuestOperations.Modify"),
	"MakeDirectoryInGuest":          onField("Vm", "VirtualMachine.GuestOperations.Modify"),
	"DeleteFileInGuest":             onField("Vm", "VirtualMachine.GuestOperations.Modify"),
	"CreateTemporaryFileInGuest":    onField("Vm", "VirtualMachine.GuestOperations.Modify"),

	// Datastore files (HTTP /folder access is checked in datastore_http.go).
	"SearchDatastore_Task":           browseChecks,
	"SearchDatastoreSubFolders_Task": browseChecks,
	"DeleteDatastoreFile_Task":       onFiles("Datastore.DeleteFile", "Name"),
	"MakeDirectory":                  onFiles(fileManagement, "Name"),
	"MoveDatastoreFile_Task":         fileManagementBoth("SourceName", "SourceDatacenter", "DestinationName", "DestinationDatacenter"),
	"CopyDatastoreFile_Task":         fileManagementBoth("SourceName", "SourceDatacenter", "DestinationName", "DestinationDatacenter"),
	"CreateVirtualDisk_Task":         onFiles(fileManagement, "Name"),
	"DeleteVirtualDisk_Task":         onFiles(fileManagement, "Name"),
	"ExtendVirtualDisk_Task":         onFiles(fileManagement, "Name"),
	"SetVirtualDiskUuid":             onFiles(fileManagement, "Name"),
	"MoveVirtualDisk_Task":           fileManagementBoth("SourceName", "SourceDatacenter", "DestName", "DestDatacenter"),
	"CopyVirtualDisk_Task":           fileManagementBoth("SourceName", "SourceDatacenter", "DestName", "DestDatacenter"),
	"RenameDatastore":                onThis("Datastore.Rename"),
	"DestroyDatastore":               onThis("Datastore.Delete"),

	// Host configuration: networking (port groups, vSwitches and their policy, VMkernel NICs, routes).
	"AddVirtualSwitch":           hostNetwork,
	"UpdateVirtualSwitch":        hostNetwork,
	"RemoveVirtualSwitch":        hostNetwork,
	"AddPortGroup":               hostNetwork,
	"UpdatePortGroup":            hostNetwork,
	"RemovePortGroup":            hostNetwork,
	"AddVirtualNic":              hostNetwork,
	"UpdateVirtualNic":           hostNetwork,
	"RemoveVirtualNic":           hostNetwork,
	"UpdateNetworkConfig":        hostNetwork,
	"UpdateDnsConfig":            hostNetwork,
	"UpdateIpRouteConfig":        hostNetwork,
	"UpdateIpRouteTableConfig":   hostNetwork,
	"UpdateConsoleIpRouteConfig": hostNetwork,
	"UpdatePhysicalNicLinkSpeed": hostNetwork,
	"SelectVnicForNicType":       hostNetwork,
	"DeselectVnicForNicType":     hostNetwork,

	// Host configuration: firewall and services (SSH, ESXi Shell).
	"UpdateRuleset":       hostNetService,
	"EnableRuleset":       hostNetService,
	"DisableRuleset":      hostNetService,
	"UpdateDefaultPolicy": hostNetService,
	"RefreshFirewall":     hostNetService,
	"UpdateServicePolicy": hostNetService,
	"StartService":        hostNetService,
	"StopService":         hostNetService,
	"RestartService":      hostNetService,
	"UninstallService":    hostNetService,
	"RefreshServices":     hostNetService,

	// Host configuration: storage (datastores, NFS mounts).
	"CreateNasDatastore":            hostStorage,
	"CreateLocalDatastore":          hostStorage,
	"CreateVmfsDatastore":           hostStorage,
	"RemoveDatastore":               hostStorage,
	"RemoveDatastoreEx_Task":        hostStorage,
	"ExpandVmfsDatastore":           hostStorage,
	"ExtendVmfsDatastore":           hostStorage,
	"UpdateLocalSwapDatastore":      hostStorage,
	"RescanAllHba":                  hostStorage,
	"RescanVmfs":                    hostStorage,
	"UnmountVmfsVolume":             hostStorage,
	"UnmountForceMountedVmfsVolume": hostStorage,

	// Host configuration: advanced options (host) or settings (service).
	"UpdateOptions": optionChecks,

	// Host state.
	"EnterMaintenanceMode_Task": onThis("Host.Config.Maintenance"),
	"ExitMaintenanceMode_Task":  onThis("Host.Config.Maintenance"),
	"RebootHost_Task":           onThis("Host.Config.Maintenance"),
	"ShutdownHost_Task":         onThis("Host.Config.Maintenance"),
	"DisconnectHost_Task":       onThis("Host.Config.Connection"),
	"ReconnectHost_Task":        onThis("Host.Config.Connection"),

	// Local accounts and permissions.
	"CreateUser":              manageAccounts,
	"UpdateUser":              manageAccounts,
	"RemoveUser":              manageAccounts,
	"CreateGroup":             manageAccounts,
	"RemoveGroup":             manageAccounts,
	"AssignUserToGroup":       manageAccounts,
	"UnassignUserFromGroup":   manageAccounts,
	"AddAuthorizationRole":    modifyRoles,
	"UpdateAuthorizationRole": modifyRoles,
	"RemoveAuthorizationRole": modifyRoles,
	"MergePermissions":        modifyRoles,
	"SetEntityPermissions":    onField("Entity", "Authorization.ModifyPermissions"),
	"TerminateSession":        onRoot("Sessions.TerminateSession"),

	// Custom tasks.
	"CreateTask":         onField("Obj", "Task.Create"),
	"SetTaskState":       taskEntity("Task.Update"),
	"UpdateProgress":     taskEntity("Task.Update"),
	"SetTaskDescription": taskEntity("Task.Update"),

	// Custom attributes and events.
	"SetCustomValue":         onThis("Global.SetCustomField"),
	"AddCustomFieldDef":      onRoot("Global.ManageCustomFields"),
	"RemoveCustomFieldDef":   onRoot("Global.ManageCustomFields"),
	"RenameCustomFieldDef":   onRoot("Global.ManageCustomFields"),
	"PostEvent":              onRoot("Global.LogEvent"),
	"RemoveEntityPermission": onField("Entity", "Authorization.ModifyPermissions"),
	"ResetEntityPermissions": onField("Entity", "Authorization.ModifyPermissions"),
}

func privileged(name string) bool {
	_, ok := rules[name]
	return ok
}

// authorize returns the first check the user fails, and true when one fails.
func (x *interceptor) authorize(user string, m *simulator.Method) (check, bool) {
	r := rules[m.Name]
	if r == nil {
		return check{}, false
	}
	for _, c := range r(m) {
		if !x.granted(user, c.entity, c.priv) {
			return c, true
		}
	}
	return check{}, false
}

// Rules that read the request.

func createVMChecks(m *simulator.Method) []check {
	req := m.Body.(*types.CreateVM_Task)
	out := on(m.This, "VirtualMachine.Inventory.Create")
	out = append(out, on(req.Pool, "Resource.AssignVMToPool")...)
	dc := datacenterRef(m.This)
	if ds := datastoreOfPath(vmPath(req.Config.Files), dc); ds != nil {
		out = append(out, check{ds.Self, "Datastore.AllocateSpace"})
	}
	return append(out, configChecks(m.This, &req.Config, dc, true)...)
}

func registerVMChecks(m *simulator.Method) []check {
	req := m.Body.(*types.RegisterVM_Task)
	out := on(m.This, "VirtualMachine.Inventory.Register")
	pool := req.Pool
	if pool == nil && req.Host != nil {
		pool = poolOfHost(*req.Host)
	}
	if pool != nil {
		out = append(out, on(*pool, "Resource.AssignVMToPool")...)
	}
	// "... and System.Read on the datastore that the existing virtual machine resides on."
	if ds := datastoreOfPath(req.Path, datacenterRef(m.This)); ds != nil {
		out = append(out, check{ds.Self, "System.Read"})
	}
	return out
}

func reconfigChecks(m *simulator.Method) []check {
	req := m.Body.(*types.ReconfigVM_Task)
	return configChecks(m.This, &req.Spec, datacenterRef(m.This), false)
}

// configChecks maps a configuration spec to the privileges it needs on target
// (the new VM's folder when creating, else the VM).
func configChecks(target types.ManagedObjectReference, spec *types.VirtualMachineConfigSpec, dc *types.ManagedObjectReference, creating bool) []check {
	var out []check
	need := func(cond bool, priv string) {
		if cond && !creating {
			out = append(out, check{target, priv})
		}
	}
	need(spec.Name != "", "VirtualMachine.Config.Rename")
	need(spec.Annotation != "", "VirtualMachine.Config.Annotation")
	need(spec.NumCPUs != 0 || spec.NumCoresPerSocket != 0, "VirtualMachine.Config.CPUCount")
	need(spec.MemoryMB != 0, "VirtualMachine.Config.Memory")
	need(spec.CpuAllocation != nil || spec.MemoryAllocation != nil || spec.LatencySensitivity != nil, "VirtualMachine.Config.Resource")
	need(spec.ChangeTrackingEnabled != nil, "VirtualMachine.Config.ChangeTracking")
	need(spec.Version != "", "VirtualMachine.Config.UpgradeVirtualHardware")
	need(spec.SwapPlacement != "", "VirtualMachine.Config.SwapPlacement")
	need(spec.ManagedBy != nil, "VirtualMachine.Config.ManagedBy")
	need(spec.GuestId != "" || spec.AlternateGuestName != "" || spec.Uuid != "" || spec.InstanceUuid != "" ||
		spec.Firmware != "" || spec.NestedHVEnabled != nil || spec.BootOptions != nil || spec.Tools != nil ||
		spec.Flags != nil || (spec.Files != nil && *spec.Files != types.VirtualMachineFileInfo{}), "VirtualMachine.Config.Settings")
	if len(spec.ExtraConfig) != 0 {
		out = append(out, check{target, "VirtualMachine.Config.AdvancedConfig"})
	}
	for _, change := range spec.DeviceChange {
		ds := change.GetVirtualDeviceConfigSpec()
		dev := ds.Device.GetVirtualDevice()
		add := ds.Operation == types.VirtualDeviceConfigSpecOperationAdd
		switch d := ds.Device.(type) {
		case *types.VirtualDisk:
			file := ""
			if b, ok := d.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
				file = b.GetVirtualDeviceFileBackingInfo().FileName
			}
			switch {
			case add && ds.FileOperation == types.VirtualDeviceConfigSpecFileOperationCreate:
				need(true, "VirtualMachine.Config.AddNewDisk")
				if store := datastoreOfPath(file, dc); store != nil {
					out = append(out, check{store.Self, "Datastore.AllocateSpace"})
				}
			case add:
				out = append(out, check{target, "VirtualMachine.Config.AddExistingDisk"})
			case ds.Operation == types.VirtualDeviceConfigSpecOperationRemove:
				need(true, "VirtualMachine.Config.RemoveDisk")
			default:
				need(true, "VirtualMachine.Config.EditDevice")
			}
			continue
		case types.BaseVirtualEthernetCard:
			if net := networkOf(dev.Backing, dc); net.Value != "" && ds.Operation != types.VirtualDeviceConfigSpecOperationRemove {
				out = append(out, check{net, "Network.Assign"})
			}
		}
		switch ds.Operation {
		case types.VirtualDeviceConfigSpecOperationEdit:
			need(true, "VirtualMachine.Config.EditDevice")
		default:
			need(true, "VirtualMachine.Config.AddRemoveDevice")
		}
	}
	return out
}

func destroyChecks(m *simulator.Method) []check {
	privs := map[string]string{
		"VirtualMachine":           "VirtualMachine.Inventory.Delete",
		"Folder":                   "Folder.Delete",
		"ResourcePool":             "Resource.DeletePool",
		"VirtualApp":               "VApp.Delete",
		"Datastore":                "Datastore.Delete",
		"Network":                  "Network.Delete",
		"Datacenter":               "Datacenter.Delete",
		"HostSystem":               "Host.Inventory.RemoveHostFromCluster",
		"ComputeResource":          "Host.Inventory.RemoveHostFromCluster",
		"ClusterComputeResource":   "Host.Inventory.DeleteCluster",
		"DistributedVirtualSwitch": "DVSwitch.Delete",
	}
	return on(m.This, privs[m.This.Type])
}

func renameChecks(m *simulator.Method) []check {
	privs := map[string]string{
		"VirtualMachine": "VirtualMachine.Config.Rename",
		"Folder":         "Folder.Rename",
		"ResourcePool":   "Resource.RenamePool",
		"Datastore":      "Datastore.Rename",
		"Datacenter":     "Datacenter.Rename",
	}
	return on(m.This, privs[m.This.Type])
}

func moveIntoFolderChecks(m *simulator.Method) []check {
	req := m.Body.(*types.MoveIntoFolder_Task)
	var out []check
	for _, ref := range req.List {
		priv := "Folder.Move"
		if ref.Type == "VirtualMachine" {
			priv = "VirtualMachine.Inventory.Move"
		}
		out = append(out, check{ref, priv}, check{m.This, priv})
	}
	return out
}

func cloneChecks(m *simulator.Method) []check {
	req := m.Body.(*types.CloneVM_Task)
	out := on(m.This, "VirtualMachine.Provisioning.Clone")
	out = append(out, on(req.Folder, "VirtualMachine.Inventory.CreateFromExisting")...)
	if req.Spec.Location.Pool != nil {
		out = append(out, on(*req.Spec.Location.Pool, "Resource.AssignVMToPool")...)
	}
	if req.Spec.Location.Datastore != nil {
		out = append(out, on(*req.Spec.Location.Datastore, "Datastore.AllocateSpace")...)
	}
	return out
}

func relocateChecks(m *simulator.Method) []check {
	req := m.Body.(*types.RelocateVM_Task)
	priv := "Resource.ColdMigrate"
	if vm, ok := simulator.Map.Get(m.This).(*simulator.VirtualMachine); ok {
		simulator.Map.WithLock(vm, func() {
			if vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn {
				priv = "Resource.HotMigrate"
			}
		})
	}
	out := on(m.This, priv)
	if req.Spec.Pool != nil {
		out = append(out, on(*req.Spec.Pool, "Resource.AssignVMToPool")...)
	}
	if req.Spec.Datastore != nil {
		out = append(out, on(*req.Spec.Datastore, "Datastore.AllocateSpace")...)
	}
	return out
}

func markAsVMChecks(m *simulator.Method) []check {
	req := m.Body.(*types.MarkAsVirtualMachine)
	return append(on(m.This, "VirtualMachine.Provisioning.MarkAsVM"), on(req.Pool, "Resource.AssignVMToPool")...)
}

func importVAppChecks(m *simulator.Method) []check {
	req := m.Body.(*types.ImportVApp)
	out := on(m.This, "VApp.Import")
	if req.Folder != nil {
		out = append(out, on(*req.Folder, "VApp.Import")...)
	}
	return out
}

func browseChecks(m *simulator.Method) []check {
	var name string
	switch req := m.Body.(type) {
	case *types.SearchDatastore_Task:
		name = req.DatastorePath
	case *types.SearchDatastoreSubFolders_Task:
		name = req.DatastorePath
	}
	if ds := datastoreOfPath(name, nil); ds != nil {
		return []check{{ds.Self, "Datastore.Browse"}}
	}
	return nil
}

func fileManagementBoth(src, srcDC, dst, dstDC string) rule {
	return func(m *simulator.Method) []check {
		var out []check
		for _, pair := range [][2]string{{src, srcDC}, {dst, dstDC}} {
			name, _ := fieldOf(m.Body, pair[0]).(string)
			dc, _ := fieldOf(m.Body, pair[1]).(*types.ManagedObjectReference)
			if ds := datastoreOfPath(name, dc); ds != nil {
				out = append(out, check{ds.Self, fileManagement})
			}
		}
		return out
	}
}

// optionChecks: a host's advanced options need Host.Config.AdvancedConfig on the
// host; the service's own settings need Global.Settings on the root folder.
func optionChecks(m *simulator.Method) []check {
	if host := hostOfManager(m.This); host.Value != "" {
		return []check{{host, "Host.Config.AdvancedConfig"}}
	}
	return on(content().RootFolder, "Global.Settings")
}

// Evaluation.

func (x *interceptor) granted(user string, entity types.ManagedObjectReference, priv string) bool {
	auth, ok := simulator.Map.Get(*content().AuthorizationManager).(*simulator.AuthorizationManager)
	if !ok {
		return false
	}
	for _, chain := range chains(entity) {
		if role, found := roleOn(auth, user, chain); found && roleHas(auth, role, priv) {
			return true
		}
	}
	return false
}

// chains lists the inheritance paths of an entity, itself first: its parents
// up to the root folder and, for a virtual machine, its resource pool's.
func chains(entity types.ManagedObjectReference) [][]types.ManagedObjectReference {
	out := [][]types.ManagedObjectReference{ancestors(entity)}
	if vm, ok := simulator.Map.Get(entity).(*simulator.VirtualMachine); ok {
		var pool *types.ManagedObjectReference
		simulator.Map.WithLock(vm, func() { pool = vm.ResourcePool })
		if pool != nil {
			out = append(out, append([]types.ManagedObjectReference{entity}, ancestors(*pool)...))
		}
	}
	return out
}

func ancestors(ref types.ManagedObjectReference) []types.ManagedObjectReference {
	var out []types.ManagedObjectReference
	for i := 0; i < 64 && ref.Value != ""; i++ {
		out = append(out, ref)
		e, ok := simulator.Map.Get(ref).(mo.Entity)
		if !ok {
			break
		}
		var parent *types.ManagedObjectReference
		simulator.Map.WithLock(e, func() { parent = e.Entity().Parent })
		if parent == nil {
			break
		}
		ref = *parent
	}
	return out
}

// roleOn returns the role of the user's nearest applicable permission along chain.
func roleOn(auth *simulator.AuthorizationManager, user string, chain []types.ManagedObjectReference) (int32, bool) {
	for i, e := range chain {
		if _, ok := simulator.Map.Get(e).(mo.Entity); !ok {
			continue
		}
		var perms []types.Permission
		simulator.Map.WithLock(auth, func() {
			res := auth.RetrieveEntityPermissions(&types.RetrieveEntityPermissions{Entity: e})
			if body, ok := res.(*methods.RetrieveEntityPermissionsBody); ok && body.Res != nil {
				perms = body.Res.Returnval
			}
		})
		for _, p := range perms {
			if p.Principal == user && !p.Group && (i == 0 || p.Propagate) {
				return p.RoleId, true
			}
		}
	}
	return 0, false
}

func roleHas(auth *simulator.AuthorizationManager, role int32, priv string) bool {
	var has bool
	simulator.Map.WithLock(auth, func() {
		for _, r := range auth.RoleList {
			if r.RoleId != role {
				continue
			}
			if r.Name == "Admin" {
				has = true
				return
			}
			for _, p := range r.Privilege {
				if p == priv {
					has = true
					return
				}
			}
		}
	})
	return has
}

// Inventory helpers.

func content() types.ServiceContent {
	return simulator.Map.Get(vim25.ServiceInstance).(*simulator.ServiceInstance).Content
}

// fieldOf reads a field of a decoded request by name (nil when absent).
func fieldOf(body interface{}, name string) interface{} {
	v := reflectValue(body)
	if !v.IsValid() {
		return nil
	}
	f := v.FieldByName(name)
	if !f.IsValid() {
		return nil
	}
	return f.Interface()
}

func reflectValue(body interface{}) reflect.Value {
	v := reflect.ValueOf(body)
	for v.IsValid() && v.Kind() == reflect.Ptr {
		v = v.Elem()
	}
	if !v.IsValid() || v.Kind() != reflect.Struct {
		return reflect.Value{}
	}
	return v
}

// hostOfManager finds the host whose configManager holds ref ("" when none does).
func hostOfManager(ref types.ManagedObjectReference) types.ManagedObjectReference {
	for _, e := range simulator.Map.All("HostSystem") {
		host := e.(*simulator.HostSystem)
		var found bool
		simulator.Map.WithLock(host, func() {
			cm := host.ConfigManager
			for _, r := range []*types.ManagedObjectReference{
				cm.NetworkSystem, cm.FirewallSystem, cm.ServiceSystem, cm.DatastoreSystem, cm.StorageSystem,
				cm.AdvancedOption, cm.VirtualNicManager, cm.DateTimeSystem, cm.AutoStartManager, cm.MemoryManager,
				cm.SnmpSystem, cm.PatchManager, cm.FirmwareSystem, cm.HealthStatusSystem, cm.PowerSystem,
			} {
				if r != nil && *r == ref {
					found = true
				}
			}
		})
		if found {
			return host.Self
		}
	}
	return types.ManagedObjectReference{}
}

func poolOfHost(host types.ManagedObjectReference) *types.ManagedObjectReference {
	h, ok := simulator.Map.Get(host).(*simulator.HostSystem)
	if !ok {
		return nil
	}
	if cr := computeResource(h); cr != nil {
		return cr.ResourcePool
	}
	return nil
}

func datacenterRef(ref types.ManagedObjectReference) *types.ManagedObjectReference {
	if e, ok := simulator.Map.Get(ref).(mo.Entity); ok {
		if dc := datacenterOf(e); dc != nil {
			self := dc.Self
			return &self
		}
	}
	return nil
}

func vmPath(files *types.VirtualMachineFileInfo) string {
	if files == nil {
		return ""
	}
	return files.VmPathName
}

// datastoreOfPath finds the datastore of "[name] path" (in datacenter dc when given).
func datastoreOfPath(p string, dc *types.ManagedObjectReference) *simulator.Datastore {
	var dp object.DatastorePath
	if !dp.FromString(p) || dp.Datastore == "" {
		return nil
	}
	return datastoreByName(dp.Datastore, dc)
}

func datastoreByName(name string, dc *types.ManagedObjectReference) *simulator.Datastore {
	if dc != nil {
		if d, ok := simulator.Map.Get(*dc).(*simulator.Datacenter); ok {
			var refs []types.ManagedObjectReference
			simulator.Map.WithLock(d, func() { refs = append(refs, d.Datastore...) })
			ds, _ := simulator.Map.FindByName(name, refs).(*simulator.Datastore)
			return ds
		}
	}
	for _, e := range simulator.Map.All("Datastore") {
		if ds := e.(*simulator.Datastore); ds.Name == name {
			return ds
		}
	}
	return nil
}

// networkOf resolves a NIC backing to its network (by reference, else by name in dc).
func networkOf(backing types.BaseVirtualDeviceBackingInfo, dc *types.ManagedObjectReference) types.ManagedObjectReference {
	switch b := backing.(type) {
	case *types.VirtualEthernetCardNetworkBackingInfo:
		if b.Network != nil {
			return *b.Network
		}
		if dc != nil {
			if d, ok := simulator.Map.Get(*dc).(*simulator.Datacenter); ok {
				var refs []types.ManagedObjectReference
				simulator.Map.WithLock(d, func() { refs = append(refs, d.Network...) })
				if n := simulator.Map.FindByName(b.DeviceName, refs); n != nil {
					return n.Reference()
				}
			}
		}
	case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
		return types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: b.Port.PortgroupKey}
	}
	return types.ManagedObjectReference{}
}

func isVM(ref types.ManagedObjectReference) bool {
	return strings.EqualFold(ref.Type, "VirtualMachine")
}
