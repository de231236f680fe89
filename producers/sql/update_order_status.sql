UPDATE order_service.orders SET status = $2, updated_at = now() WHERE order_id = $1
