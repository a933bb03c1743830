<?php
/**
 * Plugin Name: Farewell for Restrict Content Pro
 * Description: Sends membership cancellations (and comebacks) to Farewell as signed
 *              Standard Webhooks. See docs/sources/standard.md in Farewell.
 *
 * Install: save this file as wp-content/mu-plugins/farewell-rcp.php (must-use plugins load
 * automatically), then add two lines to wp-config.php, above "That's all, stop editing!":
 *
 *     define( 'FAREWELL_URL', 'https://farewell.example.com/hooks/standard' );
 *     define( 'FAREWELL_SECRET', 'whsec_...' );  // the same value as FAREWELL_STANDARD_SECRET
 *
 * Requires Restrict Content Pro 3.0 or later (the membership hooks below).
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/** A member cancelled: Farewell thanks them and asks why. */
add_action(
	'rcp_membership_post_cancel',
	function ( $membership_id, $membership ) {
		farewell_rcp_send( 'membership.cancelled', $membership );
	},
	10,
	2
);

/** A membership became active: a comeback, so Farewell stops any follow-up. */
add_action(
	'rcp_membership_post_activate',
	function ( $membership_id, $membership ) {
		farewell_rcp_send( 'membership.reactivated', $membership );
	},
	10,
	2
);

/**
 * Build our JSON body, sign it the Standard Webhooks way and POST it.
 *
 * @param string         $type       membership.cancelled | membership.reactivated | ...
 * @param RCP_Membership $membership The membership the event is about.
 */
function farewell_rcp_send( $type, $membership ) {
	if ( ! defined( 'FAREWELL_URL' ) || ! defined( 'FAREWELL_SECRET' ) ) {
		return;
	}
	$user = get_userdata( $membership->get_user_id() );
	if ( ! $user || ! $user->user_email ) {
		return;
	}

	$data = array(
		'member'          => array(
			'id'         => (string) $user->ID,
			'email'      => $user->user_email,
			'first_name' => (string) $user->first_name,
			'last_name'  => (string) $user->last_name,
			'locale'     => get_user_locale( $user->ID ),
		),
		'membership'      => array(
			'id'    => (string) $membership->get_object_id(),
			'title' => (string) $membership->get_membership_level_name(),
		),
		'subscription_id' => 'rcp-' . $membership->get_id(),
		// Part of Farewell's dedupe identity: a repeat of today's event is a duplicate, the
		// same membership cancelled again another day is a new cancellation.
		'status'          => $membership->get_status() . '@' . gmdate( 'Y-m-d' ),
	);
	$expires = $membership->get_expiration_date( false );  // site time, or 'none'
	if ( 'cancelled' === $membership->get_status() && $expires && 'none' !== $expires ) {
		$data['access_ends_at'] = get_gmt_from_date( $expires, 'Y-m-d\TH:i:s\Z' );
	}
	$body = wp_json_encode(
		array(
			'type'      => $type,
			'timestamp' => gmdate( 'Y-m-d\TH:i:s\Z' ),
			'data'      => $data,
		)
	);

	$id        = 'msg_' . wp_generate_uuid4();
	$timestamp = time();
	$key       = base64_decode( preg_replace( '/^whsec_/', '', FAREWELL_SECRET ) );
	$signature = base64_encode( hash_hmac( 'sha256', $id . '.' . $timestamp . '.' . $body, $key, true ) );

	wp_remote_post(
		FAREWELL_URL,
		array(
			'headers' => array(
				'Content-Type'      => 'application/json',
				'webhook-id'        => $id,
				'webhook-timestamp' => (string) $timestamp,
				'webhook-signature' => 'v1,' . $signature,
			),
			'body'    => $body,
			'timeout' => 5,  // Farewell answers in milliseconds; never hold the member's page long
		)
	);
}
