//! The services the fake serves, one file per group of services.

pub mod account;
pub mod catalog;
pub mod guest;
pub mod image_import;
pub mod order;
pub mod storage;

use crate::api::{ApiError, Call, Reply};
use crate::state::State;

/// Routes a call to its service.
pub fn dispatch(state: &mut State, call: &Call) -> Result<Reply, ApiError> {
    match call.service.as_str() {
        "SoftLayer_Virtual_Guest" => guest::handle(state, call),
        "SoftLayer_Network_Storage" | "SoftLayer_Network_Storage_Iscsi" => {
            storage::handle(state, call)
        }
        "SoftLayer_Product_Order" => order::handle(state, call),
        "SoftLayer_Product_Package" => catalog::handle(state, call),
        "SoftLayer_Account" => account::account(state, call),
        "SoftLayer_Billing_Item" => account::billing_item(state, call),
        "SoftLayer_Location_Datacenter" => account::datacenter(state, call),
        "SoftLayer_Network_Vlan" => account::vlan(state, call),
        "SoftLayer_Network_Subnet" => account::subnet(state, call),
        "SoftLayer_Security_Ssh_Key" => account::ssh_key(state, call),
        "SoftLayer_Virtual_Guest_Block_Device_Template_Group" => account::template(state, call),
        other => Err(ApiError {
            status: 404,
            code: "SoftLayer_Exception_Public".into(),
            message: format!("Service '{other}' is not served by this fake."),
        }),
    }
}
