package main

import (
	"bufio"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// The client site (client mode): a tenant's own vCenter, reached only by its Transporter.
// Its VMs are made by the lab (python -m tenantry.lab client-seed) with disks full of bytes.
const (
	siteDatacenter = "site"
	siteCluster    = "site-cluster"
	siteDatastore  = "site-ds-01"
)

func siteHostName(i int) string { return fmt.Sprintf("esx-site-%02d.lab.local", i) }

// buildClientSite creates the client site's inventory through the in-process client, and the
// VMs named in vms, each with one disk of diskMiB MiB full of bytes (see diskContent).
func buildClientSite(ctx context.Context, c *vim25.Client, l *lab, hosts int, datastoreDir string, vms []string, diskMiB int) error {
	site, err := newLabSite(ctx, c, l, siteDatacenter, siteCluster, hosts, siteHostName)
	if err != nil {
		return err
	}
	folders, cluster, members := site.folders, site.cluster, site.members
	if datastoreDir == "" {
		if datastoreDir, err = l.tempDir("govcsim-site-ds-"); err != nil {
			return err
		}
	}
	for _, host := range members {
		dss, err := host.ConfigManager().DatastoreSystem(ctx)
		if err != nil {
			return err
		}
		if _, err := dss.CreateLocalDatastore(ctx, siteDatastore, datastoreDir); err != nil {
			return err
		}
	}
	pool, err := cluster.ResourcePool(ctx)
	if err != nil {
		return err
	}
	for _, name := range vms {
		if err := createSiteVM(ctx, folders.VmFolder, pool, members[0], name, diskMiB); err != nil {
			return fmt.Errorf("VM %s: %w", name, err)
		}
		flat := filepath.Join(datastoreDir, name, name+"-flat.vmdk")
		if err := writeDisk(flat, name, int64(diskMiB)<<20); err != nil {
			return fmt.Errorf("disk of %s: %w", name, err)
		}
	}
	return nil
}

func createSiteVM(ctx context.Context, folder *object.Folder, pool *object.ResourcePool, host *object.HostSystem, name string, diskMiB int) error {
	var devices object.VirtualDeviceList
	scsi, err := devices.CreateSCSIController("pvscsi")
	if err != nil {
		return err
	}
	devices = append(devices, scsi)
	disk := devices.CreateDisk(scsi.(types.BaseVirtualController), types.ManagedObjectReference{},
		fmt.Sprintf("[%s] %s/%s.vmdk", siteDatastore, name, name))
	disk.CapacityInKB = int64(diskMiB) * 1024
	nic, err := devices.CreateEthernetCard("vmxnet3", &types.VirtualEthernetCardNetworkBackingInfo{
		VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "VM Network"},
	})
	if err != nil {
		return err
	}
	devices = append(devices, disk, nic)
	changes, err := devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	if err != nil {
		return err
	}
	spec := types.VirtualMachineConfigSpec{
		Name:         name,
		GuestId:      string(types.VirtualMachineGuestOsIdentifierOtherGuest64),
		NumCPUs:      1,
		MemoryMB:     512,
		Files:        &types.VirtualMachineFileInfo{VmPathName: "[" + siteDatastore + "]"},
		DeviceChange: changes,
	}
	task, err := folder.CreateVM(ctx, spec, pool, host)
	if err != nil {
		return err
	}
	_, err = task.WaitForResult(ctx, nil)
	return err
}

// diskContent is the keystream of AES-256-CTR (zero IV) keyed by SHA-256("tenantry-lab-disk:"+seed),
// taken 1 MiB at a time: a block whose first byte mod 10 is below 4 stays as it is (incompressible),
// below 8 is mapped onto 16 text symbols (about half compresses away), else it is zeros.  The first
// quarter of every disk uses the seed "shared-os-image", so VMs deduplicate against each other.
// tenantry.lab.client.disk_blocks makes the same bytes in Python.
func writeDisk(path, vm string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	out := bufio.NewWriterSize(f, 1<<20)
	stream := func(seed string) cipher.Stream {
		key := sha256.Sum256([]byte("tenantry-lab-disk:" + seed))
		block, _ := aes.NewCipher(key[:])
		return cipher.NewCTR(block, make([]byte, aes.BlockSize))
	}
	shared, own := stream("shared-os-image"), stream(vm)
	const mib = 1 << 20
	const symbols = "etaoinshrdlu \n.,"
	zero := make([]byte, mib)
	buf := make([]byte, mib)
	sharedBlocks := int(size / mib / 4)
	for i, left := 0, size; left > 0; i++ {
		s := own
		if i < sharedBlocks {
			s = shared
		}
		s.XORKeyStream(buf, zero)
		switch kind := buf[0] % 10; {
		case kind < 4:
		case kind < 8:
			for j, b := range buf {
				buf[j] = symbols[b%16]
			}
		default:
			copy(buf, zero)
		}
		n := int64(mib)
		if left < n {
			n = left
		}
		if _, err := out.Write(buf[:n]); err != nil {
			return err
		}
		left -= n
	}
	return out.Flush()
}
