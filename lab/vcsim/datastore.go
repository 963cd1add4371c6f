package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// hostDatastoreSystem lets several hosts mount one datastore: mounting a
// datastore that already exists in the datacenter (same name, same backing)
// adds this host to it, as vCenter does for a shared NFS export.
//
// A NAS datastore's files live in the directory named by the spec's
// localPath when it is absolute (created when missing), so two simulator
// processes given the same absolute localPath share the files ("NFS swing").
// A relative localPath is placed under -nfs-root, keyed by the export.
type hostDatastoreSystem struct {
	simulator.HostDatastoreSystem
	host    *simulator.HostSystem
	nfsRoot string
}

func (s *hostDatastoreSystem) CreateLocalDatastore(ctx *simulator.Context, req *types.CreateLocalDatastore) soap.HasFault {
	body := &methods.CreateLocalDatastoreBody{}
	if ds := s.findDatastore(req.Name); ds != nil {
		if ds.Info.GetDatastoreInfo().Url != req.Path {
			body.Fault_ = simulator.Fault(req.Name, &types.DuplicateName{Name: req.Name, Object: ds.Self})
			return body
		}
		body.Fault_ = s.mount(ds, req.Path)
		if body.Fault_ == nil {
			body.Res = &types.CreateLocalDatastoreResponse{Returnval: ds.Self}
		}
		return body
	}
	defer s.syncVolumes()
	return s.HostDatastoreSystem.CreateLocalDatastore(ctx, req)
}

func (s *hostDatastoreSystem) CreateNasDatastore(ctx *simulator.Context, req *types.CreateNasDatastore) soap.HasFault {
	body := &methods.CreateNasDatastoreBody{}
	spec := req.Spec
	if spec.LocalPath == "" || spec.RemoteHost == "" || spec.RemotePath == "" {
		body.Fault_ = simulator.Fault("localPath, remoteHost and remotePath are required", &types.InvalidArgument{InvalidProperty: "spec"})
		return body
	}
	if spec.Type == "" {
		spec.Type = string(types.HostFileSystemVolumeFileSystemTypeNFS)
	}
	dir := spec.LocalPath
	if !filepath.IsAbs(dir) {
		export := strings.ReplaceAll(spec.RemoteHost+"/"+strings.Trim(spec.RemotePath, "/"), "/", "_")
		dir = filepath.Join(s.nfsRoot, export, spec.LocalPath)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		body.Fault_ = simulator.Fault(err.Error(), &types.HostConfigFault{})
		return body
	}
	name := filepath.Base(dir)

	if ds := s.findDatastore(name); ds != nil {
		nas, ok := ds.Info.(*types.NasDatastoreInfo)
		if !ok || nas.Nas.RemoteHost != spec.RemoteHost || nas.Nas.RemotePath != spec.RemotePath || nas.Url != dir {
			body.Fault_ = simulator.Fault(name+" exists with another backing", &types.DuplicateName{Name: name, Object: ds.Self})
			return body
		}
		body.Fault_ = s.mount(ds, dir)
		if body.Fault_ == nil {
			body.Res = &types.CreateNasDatastoreResponse{Returnval: ds.Self}
		}
		return body
	}

	// The stock method keys the datastore by export: refuse a second name for one export.
	if dc := datacenterOf(s.host); dc != nil {
		ref := types.ManagedObjectReference{Type: "Datastore", Value: spec.RemoteHost + ":" + spec.RemotePath + "@" + dc.DatastoreFolder.Value}
		if simulator.Map.Get(ref) != nil {
			body.Fault_ = simulator.Fault("export already mounted under another name", &types.DuplicateName{Name: name, Object: ref})
			return body
		}
	}

	stockReq := *req
	stockReq.Spec = spec
	stockReq.Spec.LocalPath = dir
	res := s.HostDatastoreSystem.CreateNasDatastore(ctx, &stockReq)
	if res.Fault() != nil {
		return res
	}
	ref := res.(*methods.CreateNasDatastoreBody).Res.Returnval
	ds := simulator.Map.Get(ref).(*simulator.Datastore)
	simulator.Map.WithLock(ds, func() {
		ds.Info.(*types.NasDatastoreInfo).Nas.Name = name // ESXi names the volume after the datastore
		ds.Host = append(ds.Host, s.hostMount(dir))
	})
	s.syncVolumes()
	return res
}

func (s *hostDatastoreSystem) RemoveDatastore(ctx *simulator.Context, req *types.RemoveDatastore) soap.HasFault {
	body := &methods.RemoveDatastoreBody{}
	if simulator.FindReference(s.Datastore, req.Datastore) == nil {
		body.Fault_ = simulator.Fault("datastore not mounted on this host", &types.NotFound{})
		return body
	}
	ds, ok := simulator.Map.Get(req.Datastore).(*simulator.Datastore)
	if !ok {
		body.Fault_ = simulator.Fault("", &types.ManagedObjectNotFound{Obj: req.Datastore})
		return body
	}
	if s.inUse(ds) {
		body.Fault_ = simulator.Fault(ds.Name+" is used by virtual machines on this host",
			&types.ResourceInUse{Type: "Datastore", Name: ds.Name})
		return body
	}

	var remaining []types.DatastoreHostMount
	simulator.Map.WithLock(ds, func() {
		for _, m := range ds.Host {
			if m.Key != s.host.Self {
				remaining = append(remaining, m)
			}
		}
		ds.Host = remaining
	})
	s.Datastore = withoutRef(s.Datastore, ds.Self)
	simulator.Map.WithLock(s.host, func() { s.host.Datastore = append([]types.ManagedObjectReference(nil), s.Datastore...) })
	if cr := computeResource(s.host); cr != nil {
		simulator.Map.WithLock(cr, func() {
			for _, m := range remaining {
				if simulator.FindReference(cr.Host, m.Key) != nil {
					return // still mounted on another host of this compute resource
				}
			}
			cr.Datastore = withoutRef(cr.Datastore, ds.Self)
		})
	}
	if len(remaining) == 0 {
		destroyDatastore(ds)
	}
	s.syncVolumes()
	body.Res = &types.RemoveDatastoreResponse{}
	return body
}

func (s *hostDatastoreSystem) findDatastore(name string) *simulator.Datastore {
	dc := datacenterOf(s.host)
	if dc == nil {
		return nil
	}
	ds, _ := simulator.Map.FindByName(name, dc.Datastore).(*simulator.Datastore)
	return ds
}

func (s *hostDatastoreSystem) hostMount(path string) types.DatastoreHostMount {
	return types.DatastoreHostMount{
		Key: s.host.Self,
		MountInfo: types.HostMountInfo{
			Path:       path,
			AccessMode: string(types.HostMountModeReadWrite),
			Mounted:    types.NewBool(true),
			Accessible: types.NewBool(true),
		},
	}
}

// mount adds this host to an existing datastore.
func (s *hostDatastoreSystem) mount(ds *simulator.Datastore, path string) *soap.Fault {
	if simulator.FindReference(s.Datastore, ds.Self) != nil {
		return simulator.Fault(ds.Name+" is already mounted", &types.DuplicateName{Name: ds.Name, Object: ds.Self})
	}
	simulator.Map.WithLock(ds, func() {
		ds.Host = append(append([]types.DatastoreHostMount(nil), ds.Host...), s.hostMount(path))
	})
	s.Datastore = withRef(s.Datastore, ds.Self)
	simulator.Map.WithLock(s.host, func() { s.host.Datastore = append([]types.ManagedObjectReference(nil), s.Datastore...) })
	if cr := computeResource(s.host); cr != nil {
		simulator.Map.WithLock(cr, func() { cr.Datastore = withRef(cr.Datastore, ds.Self) })
	}
	s.syncVolumes()
	return nil
}

// syncVolumes rebuilds the host's mounted volumes (storageSystem.fileSystemVolumeInfo,
// also config.fileSystemVolume) from its datastores; modules look mounts up there.
func (s *hostDatastoreSystem) syncVolumes() {
	info := &types.HostFileSystemVolumeInfo{}
	for _, ref := range s.Datastore {
		ds, ok := simulator.Map.Get(ref).(*simulator.Datastore)
		if !ok {
			continue
		}
		simulator.Map.WithLock(ds, func() {
			mount := s.hostMount(ds.Info.GetDatastoreInfo().Url)
			for _, m := range ds.Host {
				if m.Key == s.host.Self {
					mount = m
				}
			}
			var volume types.BaseHostFileSystemVolume
			switch i := ds.Info.(type) {
			case *types.NasDatastoreInfo:
				nas := *i.Nas
				nas.Capacity = ds.Summary.Capacity
				volume = &nas
			default:
				volume = &types.HostLocalFileSystemVolume{
					HostFileSystemVolume: types.HostFileSystemVolume{Type: ds.Summary.Type, Name: ds.Name, Capacity: ds.Summary.Capacity},
					Device:               mount.MountInfo.Path,
				}
			}
			info.MountInfo = append(info.MountInfo, types.HostFileSystemMountInfo{MountInfo: mount.MountInfo, Volume: volume})
		})
	}
	if storage, ok := simulator.Map.Get(*s.host.ConfigManager.StorageSystem).(*simulator.HostStorageSystem); ok {
		simulator.Map.WithLock(storage, func() { storage.FileSystemVolumeInfo = *info })
	}
	simulator.Map.WithLock(s.host, func() { s.host.Config.FileSystemVolume = info })
}

// inUse tells whether a VM registered on this host has files on ds.
func (s *hostDatastoreSystem) inUse(ds *simulator.Datastore) bool {
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		var used bool
		simulator.Map.WithLock(vm, func() {
			used = vm.Runtime.Host != nil && *vm.Runtime.Host == s.host.Self && simulator.FindReference(vm.Datastore, ds.Self) != nil
		})
		if used {
			return true
		}
	}
	return false
}

// destroyDatastore removes an unmounted datastore from the inventory (its files stay).
func destroyDatastore(ds *simulator.Datastore) {
	if folder, ok := simulator.Map.Get(*ds.Parent).(*simulator.Folder); ok {
		simulator.Map.WithLock(folder, func() { folder.ChildEntity = withoutRef(folder.ChildEntity, ds.Self) })
	}
	if dc := datacenterOf(ds); dc != nil {
		simulator.Map.WithLock(dc, func() { dc.Datastore = withoutRef(dc.Datastore, ds.Self) })
	}
	simulator.Map.Remove(ds.Browser)
	simulator.Map.Remove(ds.Self)
}
