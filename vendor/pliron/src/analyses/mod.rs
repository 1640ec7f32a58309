// SPDX-License-Identifier: Apache-2.0
// Copyright (c) The pliron contributors

//! Various Analyses

pub mod liveness;
