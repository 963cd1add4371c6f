package main

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Changed-block tracking (CBT), as vSphere offers it to backup software:
//
//   - ReconfigVM with changeTrackingEnabled turns it on (stock simulator behaviour);
//   - each CreateSnapshot_Task of a VM with CBT on freezes a new state of every disk: the
//     snapshot's disk backings carry changeId "<uuid>/<n>";
//   - QueryChangedDiskAreas(snapshot, deviceKey, startOffset, changeId) answers the areas
//     written between the state changeId names and the snapshot's ("*": the whole disk).
//
// The simulator has no guest, so the guest's writes come through a lab endpoint,
// POST /tenantry/disk-write?dsName=DS&path=DIR/FILE&offset=N (basic auth with the simulator's
// user), which writes the body into the disk's flat file and records the extent, as the
// hypervisor's CBT filter would.  A flat file changed any other way (its size or mtime no
// longer what the tracker last saw) makes the next snapshot report the whole disk changed.
//
// The stock VirtualMachine type cannot gain methods, so an HTTP middleware hands
// QueryChangedDiskAreas to one tracker object (its _this rewritten) and stamps the change
// ids on a snapshot right after CreateSnapshot_Task (tasks finish inside the call).

const trackerType = "TenantryChangeTracker"

var trackerRef = types.ManagedObjectReference{Type: trackerType, Value: "tracker"}

type extent struct {
	epoch       int
	start, size int64
}

type diskTrack struct {
	id      string
	epoch   int // the state the latest snapshot froze
	resetAt int // a change nobody reported happened before this state: earlier change ids get "everything"
	writes  []extent
	size    int64
	mtime   time.Time
}

type changeTracker struct {
	mu    sync.Mutex
	disks map[string]*diskTrack // flat file path -> track
}

var tracker = &changeTracker{disks: map[string]*diskTrack{}}

// changeTrackerObject is the handler object QueryChangedDiskAreas is dispatched to.  Its first
// field is a type of package mo, as the simulator expects of every registered object.
type changeTrackerObject struct {
	mo.ExtensibleManagedObject
}

func installChangeTracking() {
	obj := &changeTrackerObject{}
	obj.Self = trackerRef
	simulator.Map.Put(obj)
}

func (t *changeTracker) track(file string) *diskTrack {
	d, ok := t.disks[file]
	if !ok {
		d = &diskTrack{id: uuid.New().String()}
		if st, err := os.Stat(file); err == nil {
			d.size, d.mtime = st.Size(), st.ModTime()
		}
		t.disks[file] = d
	}
	return d
}

// flatFile is where a disk's bytes live: dir/name-flat.vmdk beside dir/name.vmdk.
func flatFile(fileName string) (string, bool) {
	p, ok := datastoreFile(fileName)
	if !ok {
		return "", false
	}
	flat := strings.TrimSuffix(p, ".vmdk") + "-flat.vmdk"
	if _, err := os.Stat(flat); err == nil {
		return flat, true
	}
	return p, true
}

// datastoreFile resolves "[ds] dir/file" to a local path.
func datastoreFile(fileName string) (string, bool) {
	var p struct{ ds, rel string }
	if !strings.HasPrefix(fileName, "[") {
		return "", false
	}
	end := strings.Index(fileName, "]")
	if end < 0 {
		return "", false
	}
	p.ds, p.rel = fileName[1:end], strings.TrimSpace(fileName[end+1:])
	dir, ok := datastoreDir(p.ds)
	if !ok {
		return "", false
	}
	return path.Join(dir, p.rel), true
}

func datastoreDir(name string) (string, bool) {
	for _, e := range simulator.Map.All("Datastore") {
		ds := e.(*simulator.Datastore)
		if ds.Name == name {
			return ds.Info.GetDatastoreInfo().Url, true
		}
	}
	return "", false
}

// stampSnapshot freezes a new CBT state of every disk of the VM into its current snapshot.
func stampSnapshot(vmRef types.ManagedObjectReference) {
	vm, ok := simulator.Map.Get(vmRef).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	var snapRef *types.ManagedObjectReference
	enabled := false
	simulator.Map.WithLock(vm, func() {
		enabled = vm.Config != nil && vm.Config.ChangeTrackingEnabled != nil && *vm.Config.ChangeTrackingEnabled
		if vm.Snapshot != nil && vm.Snapshot.CurrentSnapshot != nil {
			ref := *vm.Snapshot.CurrentSnapshot
			snapRef = &ref
		}
	})
	if !enabled || snapRef == nil {
		return
	}
	snap, ok := simulator.Map.Get(*snapRef).(*simulator.VirtualMachineSnapshot)
	if !ok {
		return
	}
	tracker.mu.Lock()
	defer tracker.mu.Unlock()
	simulator.Map.WithLock(snap, func() {
		devices := append([]types.BaseVirtualDevice(nil), snap.Config.Hardware.Device...)
		for i, dev := range devices {
			disk, ok := dev.(*types.VirtualDisk)
			if !ok {
				continue
			}
			backing, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			if !ok {
				continue
			}
			file, ok := flatFile(backing.FileName)
			if !ok {
				continue
			}
			d := tracker.track(file)
			d.epoch++
			if st, err := os.Stat(file); err == nil && (st.Size() != d.size || !st.ModTime().Equal(d.mtime)) {
				d.resetAt = d.epoch // changed behind the tracker's back
				d.size, d.mtime = st.Size(), st.ModTime()
			}
			copyDisk := *disk
			copyBacking := *backing
			copyBacking.ChangeId = fmt.Sprintf("%s/%d", d.id, d.epoch)
			copyDisk.Backing = &copyBacking
			devices[i] = &copyDisk
		}
		hw := snap.Config.Hardware
		hw.Device = devices
		snap.Config.Hardware = hw
	})
}

// QueryChangedDiskAreas answers from the tracker (the request's _this named the VM; the
// snapshot, which this simulator requires, names it too).
func (o *changeTrackerObject) QueryChangedDiskAreas(req *types.QueryChangedDiskAreas) soap.HasFault {
	body := &methods.QueryChangedDiskAreasBody{}
	fail := func(msg string) soap.HasFault {
		body.Fault_ = simulator.Fault(msg, &types.InvalidArgument{InvalidProperty: "changeId"})
		return body
	}
	if req.Snapshot == nil {
		return fail("this simulator needs the snapshot argument")
	}
	snap, ok := simulator.Map.Get(*req.Snapshot).(*simulator.VirtualMachineSnapshot)
	if !ok {
		body.Fault_ = simulator.Fault("", &types.ManagedObjectNotFound{Obj: *req.Snapshot})
		return body
	}
	var capacity int64
	var current, fileName string
	simulator.Map.WithLock(snap, func() {
		for _, dev := range snap.Config.Hardware.Device {
			if disk, ok := dev.(*types.VirtualDisk); ok && disk.Key == req.DeviceKey {
				capacity = disk.CapacityInBytes
				if capacity == 0 {
					capacity = disk.CapacityInKB * 1024
				}
				if b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
					current, fileName = b.ChangeId, b.FileName
				}
			}
		}
	})
	if fileName == "" {
		return fail(fmt.Sprintf("no disk %d in the snapshot", req.DeviceKey))
	}
	if current == "" {
		return fail("changed block tracking was not on when the snapshot was taken")
	}
	file, _ := flatFile(fileName)
	tracker.mu.Lock()
	d := tracker.track(file)
	tracker.mu.Unlock()
	id, upTo, err := parseChangeID(current)
	if err != nil {
		return fail(err.Error())
	}
	from := req.StartOffset
	all := []types.DiskChangeExtent{{Start: from, Length: capacity - from}}
	info := types.DiskChangeInfo{StartOffset: from, Length: capacity - from}
	if req.ChangeId == "*" {
		info.ChangedArea = all
		return &methods.QueryChangedDiskAreasBody{Res: &types.QueryChangedDiskAreasResponse{Returnval: info}}
	}
	sinceID, since, err := parseChangeID(req.ChangeId)
	if err != nil || sinceID != id || since > upTo {
		return fail("changeId " + req.ChangeId + " does not belong to this disk's history")
	}
	tracker.mu.Lock()
	if d.resetAt > since {
		info.ChangedArea = all
	} else {
		info.ChangedArea = mergeExtents(d.writes, since, upTo, from, capacity)
	}
	tracker.mu.Unlock()
	return &methods.QueryChangedDiskAreasBody{Res: &types.QueryChangedDiskAreasResponse{Returnval: info}}
}

func parseChangeID(s string) (string, int, error) {
	i := strings.LastIndex(s, "/")
	if i < 0 {
		return "", 0, fmt.Errorf("malformed changeId %q", s)
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return "", 0, fmt.Errorf("malformed changeId %q", s)
	}
	return s[:i], n, nil
}

// mergeExtents: the writes of states (since, upTo], clipped to [from, capacity), sorted and merged.
func mergeExtents(writes []extent, since, upTo int, from, capacity int64) []types.DiskChangeExtent {
	var spans [][2]int64
	for _, w := range writes {
		if w.epoch <= since || w.epoch > upTo {
			continue
		}
		start, end := w.start, w.start+w.size
		if start < from {
			start = from
		}
		if end > capacity {
			end = capacity
		}
		if start < end {
			spans = append(spans, [2]int64{start, end})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i][0] < spans[j][0] })
	var out []types.DiskChangeExtent
	for _, s := range spans {
		if n := len(out); n > 0 && s[0] <= out[n-1].Start+out[n-1].Length {
			if end := s[1]; end > out[n-1].Start+out[n-1].Length {
				out[n-1].Length = end - out[n-1].Start
			}
			continue
		}
		out = append(out, types.DiskChangeExtent{Start: s[0], Length: s[1] - s[0]})
	}
	return out
}

// ---------------------------------------------------------------------- HTTP middleware

var thisVM = regexp.MustCompile(`(<_this[^>]*type="VirtualMachine"[^>]*>)([^<]*)(</_this>)`)

// withChangeTracking routes QueryChangedDiskAreas to the tracker, stamps change ids after
// CreateSnapshot_Task, and serves the lab's guest-write endpoint.
func withChangeTracking(next http.Handler, username, password string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/tenantry/disk-write" {
			guestWrite(w, r, username, password)
			return
		}
		if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/sdk") {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		_ = r.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		method := soapMethod(body)
		var vmRef *types.ManagedObjectReference
		switch method {
		case "QueryChangedDiskAreas":
			body = thisVM.ReplaceAll(body, []byte(`<_this type="`+trackerType+`">tracker</_this>`))
		case "CreateSnapshot_Task":
			if m := thisVM.FindSubmatch(body); m != nil {
				vmRef = &types.ManagedObjectReference{Type: "VirtualMachine", Value: string(bytes.TrimSpace(m[2]))}
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
		if vmRef != nil {
			stampSnapshot(*vmRef)
		}
	})
}

// guestWrite writes the request body into a disk's flat file at offset and records the extent.
func guestWrite(w http.ResponseWriter, r *http.Request, username, password string) {
	user, pass, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(username)) != 1 ||
		subtle.ConstantTimeCompare([]byte(pass), []byte(password)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="tenantry-vcsim"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	offset, err := strconv.ParseInt(q.Get("offset"), 10, 64)
	if err != nil || offset < 0 {
		http.Error(w, "offset must be a byte offset", http.StatusBadRequest)
		return
	}
	file, ok := flatFile(fmt.Sprintf("[%s] %s", q.Get("dsName"), q.Get("path")))
	if !ok || strings.Contains(q.Get("path"), "..") {
		http.Error(w, "no such datastore file", http.StatusNotFound)
		return
	}
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	defer f.Close()
	tracker.mu.Lock()
	defer tracker.mu.Unlock()
	d := tracker.track(file)
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n, err := io.Copy(f, r.Body)
	if n > 0 {
		d.writes = append(d.writes, extent{epoch: d.epoch + 1, start: offset, size: n})
	}
	if st, serr := f.Stat(); serr == nil {
		d.size, d.mtime = st.Size(), st.ModTime()
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "%d\n", n)
}
