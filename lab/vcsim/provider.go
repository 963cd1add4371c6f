package main

import (
	"context"
	"fmt"
	"path"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// Names of the provider site (vcenter mode).  lab/README.md lists them too.
const (
	providerDatacenter = "provider"
	productionCluster  = "production"
	replicationFolder  = "replication-targets"
	productionFolder   = "production"
	replicationPool    = "replication-targets"
	managementNetwork  = "management"
	templateName       = "nested-esxi-template"
)

var productionDatastores = []string{"prod-ds-01", "prod-ds-02"}

func productionHostName(i int) string { return fmt.Sprintf("esx-prod-%02d.lab.local", i) }

// buildProvider creates the MSP provider inventory through the in-process
// client, so every call goes through the same handlers as a remote client.
func buildProvider(ctx context.Context, c *vim25.Client, l *lab, hosts, vms int) error {
	site, err := newLabSite(ctx, c, l, providerDatacenter, productionCluster, hosts, productionHostName)
	if err != nil {
		return err
	}
	folders, cluster, members := site.folders, site.cluster, site.members

	for _, name := range productionDatastores {
		dir, err := l.tempDir("govcsim-provider-" + name + "-")
		if err != nil {
			return err
		}
		for _, host := range members {
			dss, err := host.ConfigManager().DatastoreSystem(ctx)
			if err != nil {
				return err
			}
			if _, err := dss.CreateLocalDatastore(ctx, name, dir); err != nil {
				return err
			}
		}
	}

	for _, host := range members {
		ns, err := host.ConfigManager().NetworkSystem(ctx)
		if err != nil {
			return err
		}
		if err := ns.AddPortGroup(ctx, types.HostPortGroupSpec{Name: managementNetwork, VswitchName: "vSwitch0"}); err != nil {
			return err
		}
	}

	if _, err := folders.VmFolder.CreateFolder(ctx, replicationFolder); err != nil {
		return err
	}
	production, err := folders.VmFolder.CreateFolder(ctx, productionFolder)
	if err != nil {
		return err
	}
	pool, err := cluster.ResourcePool(ctx)
	if err != nil {
		return err
	}
	if _, err := pool.Create(ctx, replicationPool, types.DefaultResourceConfigSpec()); err != nil {
		return err
	}

	template, err := createVM(ctx, folders.VmFolder, pool, members[0], vmSpec{
		name: templateName, guestID: string(types.VirtualMachineGuestOsIdentifierVmkernel7Guest),
		datastore: productionDatastores[0], network: managementNetwork, cpus: 4, memoryMB: 16384, nestedHV: true,
	})
	if err != nil {
		return err
	}
	if err := template.MarkAsTemplate(ctx); err != nil {
		return err
	}

	for i := 1; i <= vms; i++ {
		vm, err := createVM(ctx, production, pool, members[(i-1)%len(members)], vmSpec{
			name: fmt.Sprintf("prod-vm-%03d", i), guestID: string(types.VirtualMachineGuestOsIdentifierOtherGuest64),
			datastore: productionDatastores[(i-1)%len(productionDatastores)], network: "VM Network", cpus: 1, memoryMB: 1024,
		})
		if err != nil {
			return err
		}
		task, err := vm.PowerOn(ctx)
		if err != nil {
			return err
		}
		if err := task.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

type vmSpec struct {
	name, guestID, datastore, network string
	cpus, memoryMB                    int
	nestedHV                          bool
}

func createVM(ctx context.Context, folder *object.Folder, pool *object.ResourcePool, host *object.HostSystem, s vmSpec) (*object.VirtualMachine, error) {
	var devices object.VirtualDeviceList
	scsi, err := devices.CreateSCSIController("pvscsi")
	if err != nil {
		return nil, err
	}
	devices = append(devices, scsi)
	disk := devices.CreateDisk(scsi.(types.BaseVirtualController), types.ManagedObjectReference{},
		fmt.Sprintf("[%s] %s", s.datastore, path.Join(s.name, s.name+".vmdk")))
	disk.CapacityInKB = 16 * 1024 * 1024
	nic, err := devices.CreateEthernetCard("vmxnet3", &types.VirtualEthernetCardNetworkBackingInfo{
		VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: s.network},
	})
	if err != nil {
		return nil, err
	}
	devices = append(devices, disk, nic)
	changes, err := devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	if err != nil {
		return nil, err
	}
	spec := types.VirtualMachineConfigSpec{
		Name:            s.name,
		GuestId:         s.guestID,
		NumCPUs:         int32(s.cpus),
		MemoryMB:        int64(s.memoryMB),
		NestedHVEnabled: types.NewBool(s.nestedHV),
		Files:           &types.VirtualMachineFileInfo{VmPathName: "[" + s.datastore + "]"},
		DeviceChange:    changes,
	}
	task, err := folder.CreateVM(ctx, spec, pool, host)
	if err != nil {
		return nil, err
	}
	info, err := task.WaitForResult(ctx, nil)
	if err != nil {
		return nil, err
	}
	return object.NewVirtualMachine(folder.Client(), info.Result.(types.ManagedObjectReference)), nil
}

// labSite is a datacenter with one cluster of hosts, as both the provider and a client site start.
type labSite struct {
	folders *object.DatacenterFolders
	cluster *object.ClusterComputeResource
	members []*object.HostSystem
}

// newLabSite creates datacenter dcName with cluster clusterName of hosts hosts named by hostName.
func newLabSite(ctx context.Context, c *vim25.Client, l *lab, dcName, clusterName string, hosts int, hostName func(int) string) (*labSite, error) {
	dc, err := object.NewRootFolder(c).CreateDatacenter(ctx, dcName)
	if err != nil {
		return nil, err
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		return nil, err
	}
	cluster, err := folders.HostFolder.CreateCluster(ctx, clusterName, types.ClusterConfigSpecEx{})
	if err != nil {
		return nil, err
	}
	var members []*object.HostSystem
	for i := 1; i <= hosts; i++ {
		task, err := cluster.AddHost(ctx, types.HostConnectSpec{HostName: hostName(i)}, true, nil, nil)
		if err != nil {
			return nil, err
		}
		info, err := task.WaitForResult(ctx, nil)
		if err != nil {
			return nil, err
		}
		members = append(members, object.NewHostSystem(c, info.Result.(types.ManagedObjectReference)))
	}
	fixHosts(l)
	return &labSite{folders: folders, cluster: cluster, members: members}, nil
}
