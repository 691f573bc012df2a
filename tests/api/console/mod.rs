//! The owner console (contract §8). `http` checks the rules a browser cannot show
//! (headers, cookie attributes, refusals) with plain HTTP; `scenarios` drives a real
//! headless Chromium through the pages.

mod browser;
mod http;
mod scenarios;
