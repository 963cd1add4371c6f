package main

import (
	"context"
	"fmt"

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

// buildClientSite creates the client site's inventory through the in-process client.
func buildClientSite(ctx context.Context, c *vim25.Client, l *lab, hosts int, datastoreDir string) error {
	dc, err := object.NewRootFolder(c).CreateDatacenter(ctx, siteDatacenter)
	if err != nil {
		return err
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		return err
	}
	cluster, err := folders.HostFolder.CreateCluster(ctx, siteCluster, types.ClusterConfigSpecEx{})
	if err != nil {
		return err
	}
	var members []*object.HostSystem
	for i := 1; i <= hosts; i++ {
		task, err := cluster.AddHost(ctx, types.HostConnectSpec{HostName: siteHostName(i)}, true, nil, nil)
		if err != nil {
			return err
		}
		info, err := task.WaitForResult(ctx, nil)
		if err != nil {
			return err
		}
		members = append(members, object.NewHostSystem(c, info.Result.(types.ManagedObjectReference)))
	}
	fixHosts(l)
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
	return nil
}
