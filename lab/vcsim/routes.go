package main

import (
	"net"

	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// UpdateIpRouteConfig sets the default gateway of the host's default TCP/IP
// stack (config.network.ipRouteConfig), which the stock simulator does not
// implement.  As on ESXi the gateway must be reachable: on gatewayDevice (a
// VMkernel NIC whose IPv4 subnet holds it) or, when no device is named, on
// some VMkernel NIC.  An empty gateway clears it.  The route table's default
// route and the defaultTcpipStack instance follow, so every place a client
// reads the default gateway from agrees.
func (s *hostNetworkSystem) UpdateIpRouteConfig(req *types.UpdateIpRouteConfig) soap.HasFault {
	body := &methods.UpdateIpRouteConfigBody{}
	if req.Config == nil {
		body.Fault_ = fault("config", &types.InvalidArgument{InvalidProperty: "config"})
		return body
	}
	want := *req.Config.GetHostIpRouteConfig()
	s.mutate(func() {
		gateway, device := want.DefaultGateway, want.GatewayDevice
		if gateway == "" {
			if device != "" {
				body.Fault_ = fault("gatewayDevice without defaultGateway", &types.InvalidArgument{InvalidProperty: "gatewayDevice"})
				return
			}
		} else {
			ip := net.ParseIP(gateway)
			if ip == nil || ip.To4() == nil {
				body.Fault_ = fault("defaultGateway "+gateway+" is not an IPv4 address", &types.InvalidArgument{InvalidProperty: "defaultGateway"})
				return
			}
			if device == "" {
				if s.deviceFor(gateway) == "" {
					body.Fault_ = fault("defaultGateway "+gateway+" is not reachable on any VMkernel NIC", &types.InvalidArgument{InvalidProperty: "defaultGateway"})
					return
				}
			} else if nic := s.vnic(device); nic == nil {
				body.Fault_ = fault("gatewayDevice "+device, &types.NotFound{})
				return
			} else if !onSubnet(nic, ip) {
				body.Fault_ = fault("defaultGateway "+gateway+" is not reachable on "+device, &types.InvalidArgument{InvalidProperty: "defaultGateway"})
				return
			}
		}
		// New objects, never edits in place: the stock model shares these between hosts.
		config := want
		s.NetworkInfo.IpRouteConfig = &config
		s.setDefaultRoute(gateway, device)
		stacks := append([]types.HostNetStackInstance(nil), s.NetworkInfo.NetStackInstance...)
		for i := range stacks {
			if stacks[i].Key == "defaultTcpipStack" {
				stack := config
				stacks[i].IpRouteConfig = &stack
			}
		}
		s.NetworkInfo.NetStackInstance = stacks
		body.Res = &types.UpdateIpRouteConfigResponse{}
	})
	return body
}

// setDefaultRoute replaces the 0.0.0.0/0 entry of the route table (none when gateway is empty).
func (s *hostNetworkSystem) setDefaultRoute(gateway, device string) {
	info := &types.HostIpRouteTableInfo{}
	if s.NetworkInfo.RouteTableInfo != nil {
		*info = *s.NetworkInfo.RouteTableInfo
	}
	var routes []types.HostIpRouteEntry
	for _, route := range info.IpRoute {
		if !(route.Network == "0.0.0.0" && route.PrefixLength == 0) {
			routes = append(routes, route)
		}
	}
	if gateway != "" {
		if device == "" {
			device = s.deviceFor(gateway)
		}
		routes = append([]types.HostIpRouteEntry{{Network: "0.0.0.0", PrefixLength: 0, Gateway: gateway, DeviceName: device}}, routes...)
	}
	info.IpRoute = routes
	s.NetworkInfo.RouteTableInfo = info
}

// onSubnet tells whether ip lies in the IPv4 subnet of a VMkernel NIC.
func onSubnet(nic *types.HostVirtualNic, ip net.IP) bool {
	if nic.Spec.Ip == nil {
		return false
	}
	own := net.ParseIP(nic.Spec.Ip.IpAddress)
	mask := net.IPMask(net.ParseIP(nic.Spec.Ip.SubnetMask).To4())
	return own != nil && own.To4() != nil && len(mask) == 4 && own.Mask(mask).Equal(ip.Mask(mask))
}
