// SPDX-License-Identifier: Apache-2.0
// Copyright (c) The pliron contributors

//! Builtin dialect: [Op](crate::op::Op)s, [Type](crate::type::Type)s and [Attribute](crate::attribute::Attribute)s

pub mod attr_interfaces;
pub mod attributes;
pub mod given_names;
pub mod interface_impls;
pub mod op_interfaces;
pub mod ops;
pub mod type_interfaces;
pub mod types;
