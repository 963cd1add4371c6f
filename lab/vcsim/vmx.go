package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// The .vmx of every virtual machine is written as its configuration changes
// (the stock simulator leaves it empty) and read by RegisterVM_Task, as ESXi
// does: name, guest, hardware version, CPUs, memory, BIOS and instance UUIDs,
// nested HV, firmware, annotation, extraConfig, SCSI/SATA/NVMe controllers,
// disks (capacity from their descriptor) and NICs with their type, network,
// address type and MAC.  uuid.location ties the file to a host and a path;
// registering it on another host, or at another path, raises the "moved or
// copied?" question at the first power-on (question.go).

type vmxState struct {
	mu      sync.Mutex
	pending map[types.ManagedObjectReference]*pendingQuestion
}

func newVMXState() *vmxState {
	return &vmxState{pending: map[types.ManagedObjectReference]*pendingQuestion{}}
}

// vmxEntry is one "key = value" line.
type vmxEntry struct{ key, value string }

func vmxEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '|', '"', '\n', '\r', '#':
			fmt.Fprintf(&b, "|%02X", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func vmxUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '|' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func formatVMX(entries []vmxEntry) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		fmt.Fprintf(&b, "%s = \"%s\"\n", e.key, vmxEscape(e.value))
	}
	return b.Bytes()
}

// parseVMX reads "key = value" lines, in order.
func parseVMX(data []byte) []vmxEntry {
	var out []vmxEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		value = strings.TrimSuffix(strings.TrimPrefix(value, "\""), "\"")
		out = append(out, vmxEntry{strings.TrimSpace(key), vmxUnescape(value)})
	}
	return out
}

func vmxBool(v string) bool {
	switch strings.ToLower(v) {
	case "true", "yes", "1", "on":
		return true
	}
	return false
}

// UUIDs: "564d2f12-8041-639b-5018-05a835b72eaf" <-> "56 4d 2f 12 80 41 63 9b-50 18 05 a8 35 b7 2e af".

func uuidToVMX(id string) string {
	raw, err := hex.DecodeString(strings.ReplaceAll(id, "-", ""))
	if err != nil || len(raw) != 16 {
		return ""
	}
	hexes := make([]string, 16)
	for i, b := range raw {
		hexes[i] = fmt.Sprintf("%02x", b)
	}
	return strings.Join(hexes[:8], " ") + "-" + strings.Join(hexes[8:], " ")
}

func uuidFromVMX(v string) string {
	raw, err := hex.DecodeString(strings.NewReplacer(" ", "", "-", "").Replace(v))
	if err != nil || len(raw) != 16 {
		return ""
	}
	h := hex.EncodeToString(raw)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func randomUUID() string {
	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	raw[6] = raw[6]&0x0f | 0x40
	raw[8] = raw[8]&0x3f | 0x80
	h := hex.EncodeToString(raw)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// location is uuid.location: a hash of the host's hardware UUID and the .vmx path.
func location(hostUUID, vmxPath string) string {
	sum := sha1.Sum([]byte(hostUUID + "|" + vmxPath))
	h := hex.EncodeToString(sum[:16])
	return uuidToVMX(h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32])
}

// Guest OS: the API's "otherGuest64", "rhel8_64Guest" are "other-64", "rhel8-64" in a .vmx.

func guestToVMX(id string) string {
	s := strings.ToLower(strings.ReplaceAll(id, "Guest", ""))
	switch {
	case strings.HasSuffix(s, "_64"):
		s = strings.TrimSuffix(s, "_64") + "-64"
	case strings.HasSuffix(s, "64") && !strings.HasSuffix(s, "-64"):
		s = strings.TrimSuffix(s, "64") + "-64"
	}
	return s
}

// guestFromVMX maps back through the simulator's guest list, else by the
// naming rule ("rhel9-64" is "rhel9_64Guest", "vmkernel8" is "vmkernel8Guest").
func guestFromVMX(v string) string {
	if v == "" {
		return ""
	}
	for _, id := range simulator.GuestID {
		if guestToVMX(string(id)) == strings.ToLower(v) || strings.EqualFold(string(id), v) {
			return string(id)
		}
	}
	if base := strings.TrimSuffix(v, "-64"); base != v {
		return base + "_64Guest"
	}
	return v + "Guest"
}

// Device kinds.

var nicKinds = map[string]string{ // vmx virtualDev -> govmomi ethernet card name
	"vmxnet3": "vmxnet3", "e1000": "e1000", "e1000e": "e1000e", "vmxnet2": "vmxnet2",
	"vmxnet": "vmxnet2", "vlance": "pcnet32", "sriov": "sriov",
}

func nicKind(d types.BaseVirtualDevice) string {
	switch d.(type) {
	case *types.VirtualVmxnet3:
		return "vmxnet3"
	case *types.VirtualE1000e:
		return "e1000e"
	case *types.VirtualE1000:
		return "e1000"
	case *types.VirtualVmxnet2:
		return "vmxnet2"
	case *types.VirtualPCNet32:
		return "vlance"
	case *types.VirtualSriovEthernetCard:
		return "sriov"
	}
	return "vmxnet3"
}

var scsiKinds = map[string]string{ // vmx virtualDev -> govmomi SCSI controller name
	"pvscsi": "pvscsi", "lsilogic": "lsilogic", "lsisas1068": "lsilogic-sas", "buslogic": "buslogic",
}

// controllerPrefix names a disk controller in a .vmx ("scsi", "sata", "nvme", "ide") with its bus.
func controllerPrefix(d types.BaseVirtualDevice) (string, string, int32) {
	switch c := d.(type) {
	case *types.ParaVirtualSCSIController:
		return "scsi", "pvscsi", c.BusNumber
	case *types.VirtualLsiLogicController:
		return "scsi", "lsilogic", c.BusNumber
	case *types.VirtualLsiLogicSASController:
		return "scsi", "lsisas1068", c.BusNumber
	case *types.VirtualBusLogicController:
		return "scsi", "buslogic", c.BusNumber
	case *types.VirtualAHCIController:
		return "sata", "", c.BusNumber
	case *types.VirtualNVMEController:
		return "nvme", "", c.BusNumber
	case *types.VirtualIDEController:
		return "ide", "", c.BusNumber
	}
	return "", "", 0
}

// Address types: API "manual" / "generated" / "assigned" are "static" / "generated" / "vpx" in a .vmx.

func addressTypeToVMX(t string) string {
	switch strings.ToLower(t) {
	case "manual":
		return "static"
	case "assigned":
		return "vpx"
	}
	return "generated"
}

func addressTypeFromVMX(t string) string {
	switch strings.ToLower(t) {
	case "static":
		return string(types.VirtualEthernetCardMacTypeManual)
	case "vpx":
		return string(types.VirtualEthernetCardMacTypeAssigned)
	}
	return string(types.VirtualEthernetCardMacTypeGenerated)
}

// Writing.

// vmxSnapshot is what syncVMX needs of a VM, copied under its lock.
type vmxSnapshot struct {
	entries  []vmxEntry
	vmxPath  string
	hostRef  *types.ManagedObjectReference
	dc       *types.ManagedObjectReference
	disks    []diskFile
	template bool
}

type diskFile struct {
	file     string
	capacity int64 // KB
	adapter  string
}

// syncVMX writes the VM's .vmx (and a descriptor for each disk whose descriptor is still empty).
func (x *interceptor) syncVMX(ref types.ManagedObjectReference) {
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	var snap vmxSnapshot
	simulator.Map.WithLock(vm, func() { snap = describeVM(vm) })
	if snap.vmxPath == "" || path.Ext(snap.vmxPath) != ".vmx" {
		return
	}
	loc := ""
	x.vmx.mu.Lock()
	if p := x.vmx.pending[ref]; p != nil {
		loc = p.oldLocation // unanswered: the file keeps its old location
	}
	x.vmx.mu.Unlock()
	if loc == "" && snap.hostRef != nil {
		loc = location(hostUUID(*snap.hostRef), snap.vmxPath)
	}
	entries := append(snap.entries, vmxEntry{"uuid.location", loc})
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
	if file := localPath(snap.vmxPath, snap.dc); file != "" {
		if err := writeAtomic(file, formatVMX(entries)); err != nil {
			log.Printf("writing %s: %v", snap.vmxPath, err)
		}
	}
	for _, d := range snap.disks {
		writeDescriptor(localPath(d.file, snap.dc), d)
	}
}

func describeVM(vm *simulator.VirtualMachine) vmxSnapshot {
	snap := vmxSnapshot{hostRef: vm.Runtime.Host}
	if vm.Config == nil {
		return snap
	}
	c := vm.Config
	snap.vmxPath = c.Files.VmPathName
	snap.template = c.Template
	snap.dc = datacenterRef(vm.Self)
	add := func(k, v string) {
		if v != "" {
			snap.entries = append(snap.entries, vmxEntry{k, v})
		}
	}
	add(".encoding", "UTF-8")
	add("config.version", "8")
	add("virtualHW.version", strings.TrimPrefix(c.Version, "vmx-"))
	add("displayName", vm.Name)
	add("guestOS", guestToVMX(c.GuestId))
	add("nvram", vm.Name+".nvram")
	add("annotation", c.Annotation)
	add("firmware", c.Firmware)
	add("uuid.bios", uuidToVMX(c.Uuid))
	add("vc.uuid", uuidToVMX(c.InstanceUuid))
	if c.Template {
		add("templateVM", "TRUE")
	}
	if c.NestedHVEnabled != nil && *c.NestedHVEnabled {
		add("vhv.enable", "TRUE")
	}
	add("numvcpus", strconv.Itoa(int(c.Hardware.NumCPU)))
	if c.Hardware.NumCoresPerSocket > 0 {
		add("cpuid.coresPerSocket", strconv.Itoa(int(c.Hardware.NumCoresPerSocket)))
	}
	add("memSize", strconv.Itoa(int(c.Hardware.MemoryMB)))
	for _, o := range c.ExtraConfig {
		v := o.GetOptionValue()
		if s, ok := v.Value.(string); ok && v.Key != "govcsim" && !structural(strings.ToLower(v.Key)) {
			add(v.Key, s)
		}
	}

	devices := object.VirtualDeviceList(c.Hardware.Device)
	dir := path.Dir(snap.vmxPath)
	nic := 0
	for _, d := range devices {
		switch dev := d.(type) {
		case types.BaseVirtualEthernetCard:
			card := dev.GetVirtualEthernetCard()
			p := fmt.Sprintf("ethernet%d", nic)
			add(p+".present", "TRUE")
			add(p+".virtualDev", nicKind(d))
			switch b := card.Backing.(type) {
			case *types.VirtualEthernetCardNetworkBackingInfo:
				add(p+".networkName", b.DeviceName)
			case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
				add(p+".dvs.switchId", b.Port.SwitchUuid)
				add(p+".dvs.portgroupId", b.Port.PortgroupKey)
			}
			kind := addressTypeToVMX(card.AddressType)
			add(p+".addressType", kind)
			if kind == "static" {
				add(p+".address", card.MacAddress)
			} else {
				add(p+".generatedAddress", card.MacAddress)
				add(p+".generatedAddressOffset", strconv.Itoa(nic*10))
			}
			if card.Connectable != nil {
				add(p+".startConnected", strings.ToUpper(strconv.FormatBool(card.Connectable.StartConnected)))
			}
			nic++
		case types.BaseVirtualController:
			prefix, kind, bus := controllerPrefix(d)
			if prefix == "" || prefix == "ide" {
				continue
			}
			p := fmt.Sprintf("%s%d", prefix, bus)
			add(p+".present", "TRUE")
			add(p+".virtualDev", kind)
		case *types.VirtualDisk:
			b, ok := dev.Backing.(types.BaseVirtualDeviceFileBackingInfo)
			if !ok || dev.UnitNumber == nil {
				continue
			}
			ctl := devices.FindByKey(dev.ControllerKey)
			if ctl == nil {
				continue
			}
			prefix, kind, bus := controllerPrefix(ctl)
			if prefix == "" {
				continue
			}
			file := b.GetVirtualDeviceFileBackingInfo().FileName
			p := fmt.Sprintf("%s%d:%d", prefix, bus, *dev.UnitNumber)
			add(p+".present", "TRUE")
			add(p+".fileName", vmxDiskName(file, dir))
			add(p+".deviceType", prefix+"-hardDisk")
			if fb, ok := dev.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok && fb.DiskMode != "" && fb.DiskMode != "persistent" {
				add(p+".mode", fb.DiskMode)
			}
			capacity := dev.CapacityInKB
			if capacity == 0 {
				capacity = dev.CapacityInBytes / 1024
			}
			if kind == "" {
				kind = prefix
			}
			snap.disks = append(snap.disks, diskFile{file: file, capacity: capacity, adapter: kind})
		}
	}
	return snap
}

// structural tells whether a .vmx key describes hardware (written from the device list, not extraConfig).
var structuralKey = regexp.MustCompile(`^(ethernet\d+|scsi\d+|sata\d+|nvme\d+|ide\d+)[.:]`)

func structural(key string) bool {
	if structuralKey.MatchString(key) {
		return true
	}
	switch key {
	case ".encoding", "config.version", "virtualhw.version", "displayname", "guestos", "nvram", "annotation",
		"firmware", "uuid.bios", "uuid.location", "uuid.action", "vc.uuid", "templatevm", "vhv.enable",
		"numvcpus", "cpuid.corespersocket", "memsize":
		return true
	}
	return false
}

// vmxDiskName is a disk's name in the .vmx: relative to the .vmx's directory
// when beside it, else /vmfs/volumes/<datastore>/<path>.
func vmxDiskName(file, dir string) string {
	var p, d object.DatastorePath
	p.FromString(file)
	d.FromString(dir)
	if p.Datastore == d.Datastore && path.Dir(p.Path) == d.Path {
		return path.Base(p.Path)
	}
	return "/vmfs/volumes/" + p.Datastore + "/" + p.Path
}

// diskPath turns a .vmx disk name back into "[ds] path".
func diskPath(name, vmxPath string) string {
	if strings.HasPrefix(name, "/vmfs/volumes/") {
		rest := strings.TrimPrefix(name, "/vmfs/volumes/")
		ds, p, ok := strings.Cut(rest, "/")
		if !ok {
			return ""
		}
		return fmt.Sprintf("[%s] %s", ds, p)
	}
	if strings.HasPrefix(name, "/") {
		return ""
	}
	var dir object.DatastorePath
	dir.FromString(vmxPath)
	return fmt.Sprintf("[%s] %s", dir.Datastore, path.Join(path.Dir(dir.Path), name))
}

// writeDescriptor gives an empty disk descriptor (as the stock simulator creates them) its content.
func writeDescriptor(file string, d diskFile) {
	if file == "" {
		return
	}
	info, err := os.Stat(file)
	if err != nil || info.Size() != 0 {
		return
	}
	extent := strings.TrimSuffix(path.Base(file), ".vmdk") + "-flat.vmdk"
	text := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"vmfs\"\n\n"+
		"# Extent description\nRW %d VMFS \"%s\"\n\n# The Disk Data Base\nddb.adapterType = \"%s\"\n",
		d.capacity*2, extent, d.adapter)
	if err := writeAtomic(file, []byte(text)); err != nil {
		log.Printf("writing %s: %v", file, err)
	}
}

// descriptorCapacity reads a descriptor's extents ("RW <sectors> ..."); 0 when it has none.
func descriptorCapacity(file string) int64 {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	var sectors int64
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && (fields[0] == "RW" || fields[0] == "RDONLY") {
			if n, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
				sectors += n
			}
		}
	}
	return sectors / 2
}

func writeAtomic(file string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(file), "."+filepath.Base(file)+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// localPath resolves "[ds] path" to the file on this machine.
func localPath(dsPath string, dc *types.ManagedObjectReference) string {
	var p object.DatastorePath
	if !p.FromString(dsPath) {
		return ""
	}
	ds := datastoreByName(p.Datastore, dc)
	if ds == nil {
		return ""
	}
	var url string
	simulator.Map.WithLock(ds, func() { url = ds.Info.GetDatastoreInfo().Url })
	return filepath.Join(url, p.Path)
}

func hostUUID(ref types.ManagedObjectReference) string {
	host, ok := simulator.Map.Get(ref).(*simulator.HostSystem)
	if !ok {
		return ""
	}
	var id string
	simulator.Map.WithLock(host, func() {
		if host.Summary.Hardware != nil {
			id = host.Summary.Hardware.Uuid
		}
	})
	return id
}

// syncAll writes the .vmx of every VM (at start-up, for the VMs the model was built with).
func (x *interceptor) syncAll() {
	for _, e := range simulator.Map.All("VirtualMachine") {
		x.syncVMX(e.Reference())
	}
}

// Reading.

type vmxNIC struct {
	index                   int
	kind, network, mac      string
	addressType             string
	startConnected          bool
	dvsSwitch, dvsPortgroup string
}

type vmxController struct {
	prefix, kind string
	bus          int32
}

type vmxDisk struct {
	prefix    string
	bus, unit int32
	file      string // "[ds] path"
	mode      string
}

type vmxConfig struct {
	raw         map[string]string
	name        string
	guest       string
	version     string
	cpus, cores int32
	memoryMB    int64
	uuid        string
	instance    string
	location    string
	action      string
	nestedHV    bool
	firmware    string
	annotation  string
	nics        []vmxNIC
	controllers []vmxController
	disks       []vmxDisk
	extra       []vmxEntry
}

var (
	nicKey  = regexp.MustCompile(`^ethernet(\d+)\.(.+)$`)
	ctlKey  = regexp.MustCompile(`^(scsi|sata|nvme|ide)(\d+)\.(present|virtualdev)$`)
	diskKey = regexp.MustCompile(`^(scsi|sata|nvme|ide)(\d+):(\d+)\.(present|filename|devicetype|mode)$`)
)

func readVMX(data []byte, vmxPath string) *vmxConfig {
	entries := parseVMX(data)
	raw := map[string]string{} // keys are case-insensitive
	original := map[string]string{}
	for _, e := range entries {
		raw[strings.ToLower(e.key)] = e.value
		original[strings.ToLower(e.key)] = e.key
	}
	c := &vmxConfig{raw: raw}
	c.name = raw["displayname"]
	c.guest = guestFromVMX(raw["guestos"])
	if v := raw["virtualhw.version"]; v != "" {
		c.version = "vmx-" + v
	}
	atoi := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
	c.cpus = int32(atoi(raw["numvcpus"]))
	c.cores = int32(atoi(raw["cpuid.corespersocket"]))
	c.memoryMB = atoi(raw["memsize"])
	c.uuid = uuidFromVMX(raw["uuid.bios"])
	c.instance = uuidFromVMX(raw["vc.uuid"])
	c.location = raw["uuid.location"]
	c.action = strings.ToLower(raw["uuid.action"])
	c.nestedHV = vmxBool(raw["vhv.enable"])
	c.firmware = raw["firmware"]
	c.annotation = raw["annotation"]

	nics := map[int]*vmxNIC{}
	ctls := map[string]*vmxController{}
	disks := map[string]*vmxDisk{}
	present := map[string]bool{}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := raw[k]
		if m := nicKey.FindStringSubmatch(k); m != nil {
			i, _ := strconv.Atoi(m[1])
			n := nics[i]
			if n == nil {
				n = &vmxNIC{index: i, startConnected: true}
				nics[i] = n
			}
			switch m[2] {
			case "present":
				present["ethernet"+m[1]] = vmxBool(v)
			case "virtualdev":
				n.kind = v
			case "networkname":
				n.network = v
			case "addresstype":
				n.addressType = addressTypeFromVMX(v)
			case "address":
				if n.mac == "" || strings.EqualFold(raw["ethernet"+m[1]+".addresstype"], "static") {
					n.mac = strings.ToLower(v)
				}
			case "generatedaddress":
				if !strings.EqualFold(raw["ethernet"+m[1]+".addresstype"], "static") {
					n.mac = strings.ToLower(v)
				}
			case "startconnected":
				n.startConnected = vmxBool(v)
			case "dvs.switchid":
				n.dvsSwitch = v
			case "dvs.portgroupid":
				n.dvsPortgroup = v
			}
			continue
		}
		if m := ctlKey.FindStringSubmatch(k); m != nil {
			id := m[1] + m[2]
			c := ctls[id]
			if c == nil {
				bus, _ := strconv.Atoi(m[2])
				c = &vmxController{prefix: m[1], bus: int32(bus)}
				ctls[id] = c
			}
			if m[3] == "present" {
				present[id] = vmxBool(v)
			} else {
				c.kind = strings.ToLower(v)
			}
			continue
		}
		if m := diskKey.FindStringSubmatch(k); m != nil {
			id := m[1] + m[2] + ":" + m[3]
			d := disks[id]
			if d == nil {
				bus, _ := strconv.Atoi(m[2])
				unit, _ := strconv.Atoi(m[3])
				d = &vmxDisk{prefix: m[1], bus: int32(bus), unit: int32(unit)}
				disks[id] = d
			}
			switch m[4] {
			case "present":
				present[id] = vmxBool(v)
			case "filename":
				d.file = diskPath(v, vmxPath)
			case "devicetype":
				if strings.Contains(strings.ToLower(v), "cdrom") {
					d.file = ""
					present[id] = false
				}
			case "mode":
				d.mode = v
			}
			continue
		}
		if !structural(k) && k != "govcsim" {
			c.extra = append(c.extra, vmxEntry{original[k], v})
		}
	}
	for i, n := range nics {
		if present["ethernet"+strconv.Itoa(i)] {
			c.nics = append(c.nics, *n)
		}
	}
	sort.Slice(c.nics, func(i, j int) bool { return c.nics[i].index < c.nics[j].index })
	for id, ctl := range ctls {
		if present[id] && ctl.prefix != "ide" {
			c.controllers = append(c.controllers, *ctl)
		}
	}
	sort.Slice(c.controllers, func(i, j int) bool {
		return c.controllers[i].prefix+strconv.Itoa(int(c.controllers[i].bus)) < c.controllers[j].prefix+strconv.Itoa(int(c.controllers[j].bus))
	})
	for id, d := range disks {
		if present[id] && d.file != "" && strings.HasSuffix(strings.ToLower(d.file), ".vmdk") {
			c.disks = append(c.disks, *d)
		}
	}
	sort.Slice(c.disks, func(i, j int) bool {
		a, b := c.disks[i], c.disks[j]
		if a.prefix != b.prefix {
			return a.prefix < b.prefix
		}
		if a.bus != b.bus {
			return a.bus < b.bus
		}
		return a.unit < b.unit
	})
	return c
}
