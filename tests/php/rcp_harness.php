<?php
// Just enough of WordPress and Restrict Content Pro to run docs/rcp-snippet.php outside
// WordPress: the snippet's request is printed as JSON instead of being sent.
define( 'ABSPATH', __DIR__ );
define( 'FAREWELL_URL', getenv( 'FAREWELL_URL' ) );
define( 'FAREWELL_SECRET', getenv( 'FAREWELL_SECRET' ) );

$GLOBALS['actions'] = array();
function add_action( $name, $callback, $priority = 10, $args = 1 ) {
	$GLOBALS['actions'][ $name ][] = $callback;
}
function do_action( $name, ...$args ) {
	foreach ( $GLOBALS['actions'][ $name ] ?? array() as $callback ) {
		$callback( ...$args );
	}
}
function get_userdata( $id ) {
	return (object) array(
		'ID'         => $id,
		'user_email' => 'rosa.lima@example.com',
		'first_name' => 'Rosa',
		'last_name'  => 'Lima',
	);
}
function get_user_locale( $user_id ) {
	return 'pt_BR';
}
function wp_json_encode( $data ) {
	return json_encode( $data );
}
function wp_generate_uuid4() {
	return '0b9c3a8e-6f1d-4c52-9a7e-2d4f8e1b3c5a';
}
function get_gmt_from_date( $date, $format ) {
	return gmdate( $format, strtotime( $date . ' UTC' ) );  // the site runs on UTC here
}
function wp_remote_post( $url, $args ) {
	echo json_encode( array( 'url' => $url, 'headers' => $args['headers'], 'body' => $args['body'] ) );
}

class RCP_Membership {
	public function __construct( private string $status ) {}
	public function get_id() { return 314; }
	public function get_user_id() { return 27; }
	public function get_object_id() { return 3; }
	public function get_membership_level_name() { return 'Premium'; }
	public function get_status() { return $this->status; }
	public function get_expiration_date( $formatted = true ) { return '2030-06-01 23:59:59'; }
}

require $argv[1];
$status = $argv[2];
do_action( 'cancelled' === $status ? 'rcp_membership_post_cancel' : 'rcp_membership_post_activate', 314, new RCP_Membership( $status ) );
